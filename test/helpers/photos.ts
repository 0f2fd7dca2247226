// Phone photos of MNIST digits written on paper, made by the test: no binary fixtures.
//
//   MNIST ink (28×28) ─► pencil on tinted paper, off-centre, at a random scale ─► light: a linear gradient
//     × a soft shadow band ─► specks, and now and then the table beyond the paper's edge ─► grain
//     ─► rendered at 1/blur of the size and drawn up (optical blur) ─► JPEG
//
// Everything is drawn from a seeded RNG, so a photo set is the same on every run.
// S = 28 (MNIST's side), D = 784; images are row-major, (H, W).

import { createCanvas, type Canvas } from 'canvas';
import { mulberry32 } from '../../reference/random.js';
import { D, IMAGE_SIDE } from '../../reference/shapes.js';

/** How one photo is taken; every length is a fraction of the photo's longer side unless named otherwise. */
export interface PhotoOptions {
  width: number; // pixels
  height: number; // pixels
  paper: [number, number, number]; // the paper's RGB under full light, 0–1
  inkStrength: number; // how much light a full-ink pixel takes away: 1 = black pencil
  digitHeight: number; // height of MNIST's 28×28 field, as a fraction of the shorter side
  digitLeft: number; // the field's left edge, as a fraction of the room left for it (0 = at the left margin)
  digitTop: number; // likewise for its top edge
  gradient: { angle: number; drop: number }; // light falls linearly by `drop` across the photo, towards `angle` (radians)
  shadow: { angle: number; offset: number; width: number; softness: number; depth: number } | null; // a band across the photo
  specks: { x: number; y: number; radius: number; depth: number }[]; // dust and crumbs, x and y as fractions of width and height
  table: { side: 'left' | 'right' | 'top' | 'bottom'; reach: number; skew: number; brightness: number } | null; // beyond the paper's edge
  grain: number; // standard deviation of the sensor noise, 0–1
  blur: number; // the scene is rendered this many times smaller and drawn up (≥ 1)
  quality: number; // JPEG quality, 0–1
}

/** One photo's options drawn from `random`: the ranges of the photo test set. */
export function randomPhotoOptions(random: () => number): PhotoOptions {
  const between = (low: number, high: number) => low + (high - low) * random();
  const longSide = Math.round(between(1000, 3000));
  const portrait = random() < 0.7;
  const shortSide = Math.round((longSide * 3) / 4);
  const brightness = between(0.5, 0.92);
  const warmth = between(-0.04, 0.08); // paper and light from bluish to yellowish
  const speckCount = Math.floor(between(0, 4));
  return {
    width: portrait ? shortSide : longSide,
    height: portrait ? longSide : shortSide,
    paper: [brightness * (1 + warmth), brightness, brightness * (1 - warmth)],
    inkStrength: between(0.45, 0.85),
    digitHeight: between(0.15, 0.45),
    digitLeft: random(),
    digitTop: random(),
    gradient: { angle: between(0, 2 * Math.PI), drop: between(0.15, 0.5) },
    shadow:
      random() < 0.75
        ? {
            angle: between(0, Math.PI),
            offset: between(-0.35, 0.35),
            width: between(0.12, 0.4), // wider than prepare's closing square (0.11): a narrower shadow is a stroke's width
            softness: between(0.02, 0.08),
            depth: between(0.2, 0.5),
          }
        : null,
    specks: Array.from({ length: speckCount }, () => ({
      x: between(0.05, 0.95),
      y: between(0.05, 0.95),
      radius: between(0.001, 0.004),
      depth: between(0.2, 0.6),
    })),
    table:
      random() < 0.3
        ? {
            side: (['left', 'right', 'top', 'bottom'] as const)[Math.floor(random() * 4)]!,
            reach: between(0.01, 0.06),
            skew: between(-0.03, 0.03),
            brightness: between(0.08, 0.35),
          }
        : null,
    grain: between(0.01, 0.04),
    blur: between(1.2, 3),
    quality: between(0.5, 0.92),
  };
}

/** Bilinear sample of a (S, S) image at continuous pixel coordinates; 0 outside. */
function sample(ink: Float32Array, u: number, v: number): number {
  const x0 = Math.floor(u);
  const y0 = Math.floor(v);
  const fx = u - x0;
  const fy = v - y0;
  const at = (x: number, y: number) => (x >= 0 && y >= 0 && x < IMAGE_SIDE && y < IMAGE_SIDE ? ink[y * IMAGE_SIDE + x]! : 0);
  return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1));
}

/** A soft step from 1 (|t| ≤ half) down to 0 (|t| ≥ half + soft), smoothstep in between. */
function band(t: number, half: number, soft: number): number {
  const outside = (Math.abs(t) - half) / soft;
  if (outside <= 0) return 1;
  if (outside >= 1) return 0;
  return 1 - outside * outside * (3 - 2 * outside);
}

/** Where the MNIST field of a photo lies, in photo pixels: `count` fields side by side, each `side` square. */
export function digitField(options: PhotoOptions, count = 1): { left: number; top: number; side: number } {
  const { width, height } = options;
  const side = options.digitHeight * Math.min(width, height);
  const margin = 0.08 * Math.min(width, height); // off the table and the paper's edge
  return {
    left: margin + options.digitLeft * (width - count * side - 2 * margin),
    top: margin + options.digitTop * (height - side - 2 * margin),
    side,
  };
}

/**
 * The photo of `inks` (each (D), MNIST's white-on-black values in [0, 1]) as a canvas, at full size.
 * Several inks are written side by side within the digit's field height, for the test of separate marks.
 */
export function photoCanvas(inks: Float32Array | Float32Array[], options: PhotoOptions, seed: number): Canvas {
  const digits = Array.isArray(inks) ? inks : [inks];
  const { width, height } = options;
  const longSide = Math.max(width, height);
  const smallWidth = Math.max(1, Math.round(width / options.blur));
  const smallHeight = Math.max(1, Math.round(height / options.blur));
  const field = digitField(options, digits.length);
  const gradientX = Math.cos(options.gradient.angle);
  const gradientY = Math.sin(options.gradient.angle);
  const reach = (Math.abs(gradientX) * width + Math.abs(gradientY) * height) / 2; // the light's falloff spans the whole photo
  const shadow = options.shadow;
  const normalX = shadow ? -Math.sin(shadow.angle) : 0;
  const normalY = shadow ? Math.cos(shadow.angle) : 0;
  const table = options.table;
  const desk = table ? ([0.9, 0.75, 0.6].map((share) => share * table.brightness) as [number, number, number]) : options.paper; // a wooden desk
  /** Whether the point (fractions of width and height) lies beyond the paper's edge. */
  const onDesk = (across: number, down: number): boolean => {
    if (!table) return false;
    const along = table.side === 'left' || table.side === 'right' ? down : across;
    const depth = table.side === 'left' ? across : table.side === 'right' ? 1 - across : table.side === 'top' ? down : 1 - down;
    return depth < table.reach + table.skew * (along - 0.5);
  };
  const random = mulberry32(seed);
  const normals = Float32Array.from({ length: 4096 }, () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
  const gaussian = () => normals[Math.floor(random() * normals.length)]!; // Box–Muller once, drawn from after: the render's hot loop

  const small = createCanvas(smallWidth, smallHeight);
  const context = small.getContext('2d');
  const image = context.createImageData(smallWidth, smallHeight);
  const data = image.data; // read once: node-canvas's getter is slow in a loop
  for (let y = 0; y < smallHeight; y++) {
    const photoY = ((y + 0.5) * height) / smallHeight;
    for (let x = 0; x < smallWidth; x++) {
      const photoX = ((x + 0.5) * width) / smallWidth;
      const dx = photoX - width / 2;
      const dy = photoY - height / 2;
      let light = 1 - options.gradient.drop * (0.5 + (dx * gradientX + dy * gradientY) / (2 * reach));
      if (shadow) {
        const across = (dx * normalX + dy * normalY) / longSide - shadow.offset;
        light *= 1 - shadow.depth * band(across, shadow.width / 2, shadow.softness);
      }
      let reflectance = 1;
      const u = ((photoX - field.left) / field.side) * IMAGE_SIDE - 0.5;
      const v = ((photoY - field.top) / field.side) * IMAGE_SIDE - 0.5;
      const slot = Math.floor((u + 0.5) / IMAGE_SIDE);
      if (v > -1 && v < IMAGE_SIDE && slot >= 0 && slot < digits.length) {
        reflectance = 1 - options.inkStrength * sample(digits[slot]!, u - slot * IMAGE_SIDE, v);
      }
      for (const speck of options.specks) {
        const distanceX = photoX - speck.x * width;
        const distanceY = photoY - speck.y * height;
        if (distanceX * distanceX + distanceY * distanceY < (speck.radius * longSide) ** 2) reflectance *= 1 - speck.depth;
      }
      let colour = options.paper;
      if (onDesk(photoX / width, photoY / height)) {
        colour = desk;
        reflectance = 1;
      }
      const noise = options.grain * gaussian();
      const p = 4 * (y * smallWidth + x);
      for (let channel = 0; channel < 3; channel++) data[p + channel] = Math.round(255 * (colour[channel]! * light * reflectance + noise));
      data[p + 3] = 255;
    }
  }
  context.putImageData(image, 0, 0);
  const photo = createCanvas(width, height);
  const photoContext = photo.getContext('2d');
  photoContext.imageSmoothingEnabled = true;
  photoContext.drawImage(small, 0, 0, width, height);
  return photo;
}

/** The photo as the JPEG a phone would save. */
export function photoJpeg(inks: Float32Array | Float32Array[], options: PhotoOptions, seed: number): Buffer {
  return photoCanvas(inks, options, seed).toBuffer('image/jpeg', { quality: options.quality });
}

/** The same digit clean: MNIST's 28×28 scaled up `scale` times, dark ink on white, as a PNG. */
export function cleanPng(ink: Float32Array, scale: number): Buffer {
  const small = createCanvas(IMAGE_SIDE, IMAGE_SIDE);
  const context = small.getContext('2d');
  const pixels = context.createImageData(IMAGE_SIDE, IMAGE_SIDE);
  for (let p = 0; p < D; p++) {
    const level = Math.round(255 * (1 - ink[p]!));
    pixels.data.set([level, level, level, 255], 4 * p);
  }
  context.putImageData(pixels, 0, 0);
  const canvas = createCanvas(IMAGE_SIDE * scale, IMAGE_SIDE * scale);
  canvas.getContext('2d').drawImage(small, 0, 0, IMAGE_SIDE * scale, IMAGE_SIDE * scale);
  return canvas.toBuffer('image/png');
}
