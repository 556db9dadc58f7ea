#!/usr/bin/python3
"""Golden values for ResamplerTest: PIL's BILINEAR resize (what torchvision's Resize does on PIL images) of a
13x9 RGB pattern to a few sizes. Run with Debian's python3-pil; paste the printed arrays into the test.
Not a test itself and not used at run time."""
from PIL import Image

W, H = 13, 9
data = bytes(((x * 37 + y * 91 + c * 53) * (x + 2 * y + c + 1)) % 256 for y in range(H) for x in range(W) for c in range(3))
img = Image.frombytes("RGB", (W, H), data)
for (w, h) in [(7, 5), (20, 15), (13, 4), (4, 9)]:
    out = img.resize((w, h), Image.BILINEAR).tobytes()
    print(f"// {W}x{H} -> {w}x{h}, (H,W,C) bytes")
    print("{" + ", ".join(str(b) for b in out) + "}")
