"""Protocol-exact metrics, each tested against an independent reference: PSNR and SSIM (frame.py), the
best-of-N protocol (protocol.py), LPIPS and FVD with the I3D network (lpips.py, fvd.py, i3d.py, weights.py),
segmentation accuracy and IoU under the best region permutation (segmentation.py), and face identity
descriptors with the pair AUC (identity.py; the dlib port in dlib_resnet.py, dlib_serial.py)."""
