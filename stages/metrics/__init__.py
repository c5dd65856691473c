"""Protocol-exact metrics, each tested against an independent reference: PSNR and SSIM (frame.py), the
best-of-N protocol (protocol.py), LPIPS and FVD with the I3D network (lpips.py, fvd.py, i3d.py, weights.py),
and segmentation accuracy and IoU under the best region permutation (segmentation.py)."""
