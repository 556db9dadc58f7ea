#!/usr/bin/python3
"""Makes the data benchmark's input: a few hundred ImageNet-like JPEGs (500x375 or 375x500, quality 90) cut from
the real colour photographs shipped with Debian's python3-skimage (astronaut, coffee, chelsea, rocket,
motorcycles, Hubble deep field, retina, IHC). Random crops covering 35-100 % of a photo, resized with PIL's
LANCZOS. Output goes OUT of git (default /tmp/vgg4j-bench/jpg). Usage: make_bench_images.py SKIMAGE_DATA_DIR OUT [N]"""
import os
import random
import sys

from PIL import Image

PHOTOS = ["astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
          "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "ihc.png"]


def main():
    src, out = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    os.makedirs(out, exist_ok=True)
    photos = [Image.open(os.path.join(src, p)).convert("RGB") for p in PHOTOS]
    rng = random.Random(2015)
    for i in range(n):
        im = photos[i % len(photos)]
        portrait = rng.random() < 0.25
        tw, th = (375, 500) if portrait else (500, 375)
        frac = rng.uniform(0.35, 1.0) ** 0.5
        cw = min(im.width, int(im.height * tw / th)) * frac
        ch = cw * th / tw
        x0 = rng.uniform(0, im.width - cw)
        y0 = rng.uniform(0, im.height - ch)
        crop = im.resize((tw, th), Image.LANCZOS, box=(x0, y0, x0 + cw, y0 + ch))
        crop.save(os.path.join(out, "img_%04d.jpg" % i), quality=90)
    total = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    print("wrote %d JPEGs to %s, %.2f bits/pixel on average" % (n, out, total * 8 / (n * 500 * 375)))


if __name__ == "__main__":
    main()
