// The attachment media module (src/media/): what the bytes are sniffed as, which types are served inline,
// and what is done to images (probe before decode, orientation, metadata stripped, WebP thumbnails). Every
// image is generated here by sharp; the decompression bomb is a PNG header built by hand.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp, { type Sharp } from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  canDecodeHeic,
  isProcessableImage,
  isServedInline,
  SNIFF_BYTES,
  sniffContentType,
} from '../src/media/content-type.ts';
import {
  DEFAULT_MAX_PIXELS,
  ImageRejectedError,
  probeImage,
  renderImage,
  type ImageRejectedReason,
} from '../src/media/images.ts';

const LIMITS = { maxPixels: DEFAULT_MAX_PIXELS };
const GPS_MARKER = 'PARLEYGPSMARKER';

let dir: string;
let fileCount = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'parley-media-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes bytes to a fresh file in the test's directory and returns its path. */
async function writeTemp(bytes: Uint8Array, suffix = '.bin'): Promise<string> {
  fileCount += 1;
  const path = join(dir, `file-${fileCount}${suffix}`);
  await writeFile(path, bytes);
  return path;
}

/** A fresh path for an output. */
function outPath(): string {
  fileCount += 1;
  return join(dir, `out-${fileCount}`);
}

/** A noisy picture (so a cut file is really cut) as sharp's raw input. */
function picture(width: number, height: number): Sharp {
  return sharp({
    create: {
      width,
      height,
      channels: 3,
      background: 'black',
      noise: { type: 'gaussian', mean: 128, sigma: 40 },
    },
  });
}

/** A plain picture: quick to encode in every format, even AVIF and GIF. */
function plainPicture(width: number, height: number): Sharp {
  return sharp({ create: { width, height, channels: 3, background: { r: 40, g: 120, b: 200 } } });
}

/** What a promise rejected with, expected to be an ImageRejectedError. */
async function rejectionReason(promise: Promise<unknown>): Promise<ImageRejectedReason> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(ImageRejectedError);
    return (error as ImageRejectedError).reason;
  }
  throw new Error('expected a rejection');
}

const CRC_TABLE = Array.from({ length: 256 }, (_, index) => {
  let value = index;
  for (let bit = 0; bit < 8; bit += 1) value = value & 1 ? 0xedb88320 ^ (value >>> 1) : value >>> 1;
  return value >>> 0;
});

/** CRC-32 as PNG chunks use it (node:zlib has no crc32 before Node 22). */
function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC of type and data. */
function pngChunk(type: string, data: Uint8Array): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const typeAndData = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(typeAndData));
  return Buffer.concat([length, typeAndData, crc]);
}

/** A valid-looking PNG of a few hundred bytes whose header declares width × height (8-bit RGB). */
function pngDeclaring(width: number, height: number): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', header),
    pngChunk('IDAT', deflateSync(Buffer.alloc(1024))),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

const FORMATS = [
  { name: 'JPEG', type: 'image/jpeg', format: 'jpeg', encode: (image: Sharp) => image.jpeg() },
  { name: 'PNG', type: 'image/png', format: 'png', encode: (image: Sharp) => image.png() },
  { name: 'WebP', type: 'image/webp', format: 'webp', encode: (image: Sharp) => image.webp() },
  { name: 'GIF', type: 'image/gif', format: 'gif', encode: (image: Sharp) => image.gif() },
  { name: 'AVIF', type: 'image/avif', format: 'heif', encode: (image: Sharp) => image.avif() },
] as const;

describe('images of each format', () => {
  for (const { name, type, format, encode } of FORMATS) {
    it(`${name}: sniffed, probed and rendered with 256 and 1024 px WebP thumbnails`, async () => {
      const bytes = await encode(plainPicture(1200, 800)).toBuffer();
      expect(await sniffContentType(bytes.subarray(0, SNIFF_BYTES))).toBe(type);
      expect(isProcessableImage(type)).toBe(true);
      expect(isServedInline(type)).toBe(true);

      const path = await writeTemp(bytes);
      const probe = await probeImage(path, LIMITS);
      expect(probe).toMatchObject({ width: 1200, height: 800, format });

      const originalOut = outPath();
      const rendered = await renderImage(path, { ...LIMITS, originalOut });
      expect(rendered).toMatchObject({ width: 1200, height: 800, original: { contentType: type } });
      const original = await readFile(originalOut);
      expect(rendered.original.size).toBe(original.length);
      expect(await sniffContentType(original)).toBe(type);
      const originalMetadata = await sharp(original).metadata();
      expect([originalMetadata.width, originalMetadata.height]).toEqual([1200, 800]);

      expect(rendered.thumbnails.map((t) => [t.longSide, t.width, t.height, t.contentType])).toEqual([
        [256, 256, 171, 'image/webp'],
        [1024, 1024, 683, 'image/webp'],
      ]);
      for (const thumbnail of rendered.thumbnails) {
        const metadata = await sharp(thumbnail.data).metadata();
        expect(metadata.format).toBe('webp');
        expect([metadata.width, metadata.height]).toEqual([thumbnail.width, thumbnail.height]);
      }
    });
  }

  it('never enlarges: a 100 × 40 image gets thumbnails of its own size', async () => {
    const path = await writeTemp(await picture(100, 40).png().toBuffer());
    const rendered = await renderImage(path, { ...LIMITS, originalOut: outPath() });
    expect(rendered.thumbnails.map((t) => [t.longSide, t.width, t.height])).toEqual([
      [256, 100, 40],
      [1024, 100, 40],
    ]);
  });

  const ANIMATIONS = [
    {
      name: 'GIF',
      type: 'image/gif',
      format: 'gif',
      encode: (image: Sharp) => image.gif({ loop: 0, delay: [100, 100, 100] }),
    },
    {
      name: 'WebP',
      type: 'image/webp',
      format: 'webp',
      encode: (image: Sharp) => image.webp({ loop: 0, delay: [100, 100, 100] }),
    },
  ] as const;

  for (const { name, type, format, encode } of ANIMATIONS) {
    it(`keeps an animated ${name} animated; its thumbnails are its first frame`, async () => {
      const frames = await Promise.all(
        [0, 1, 2].map((index) =>
          sharp({
            create: { width: 40, height: 30, channels: 3, background: { r: index * 100, g: 0, b: 0 } },
          })
            .png()
            .toBuffer(),
        ),
      );
      const animation = await encode(sharp(frames, { join: { animated: true } })).toBuffer();
      const path = await writeTemp(animation);
      expect(await probeImage(path, LIMITS)).toMatchObject({ width: 40, height: 30, format, pages: 3 });

      const originalOut = outPath();
      const rendered = await renderImage(path, { ...LIMITS, originalOut });
      expect(rendered).toMatchObject({ width: 40, height: 30, original: { contentType: type } });
      const original = await sharp(originalOut).metadata();
      expect([original.pages, original.delay]).toEqual([3, [100, 100, 100]]);
      for (const thumbnail of rendered.thumbnails) {
        const metadata = await sharp(thumbnail.data).metadata();
        expect([metadata.width, metadata.height, metadata.pages ?? 1]).toEqual([40, 30, 1]);
      }

      // Frames that together exceed the limit (though each fits) are kept as the first frame only.
      const still = outPath();
      await renderImage(path, { maxPixels: 40 * 30 * 2, originalOut: still });
      expect((await sharp(still).metadata()).pages ?? 1).toBe(1);
    });
  }
});

describe('orientation and metadata', () => {
  it('applies EXIF orientation 6 and strips EXIF, GPS and XMP from the original and every thumbnail', async () => {
    const jpeg = await picture(300, 100)
      .jpeg()
      .withExif({
        IFD0: { Make: 'ParleyPhone' },
        IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 0/1', GPSMapDatum: GPS_MARKER },
      })
      .withMetadata({ orientation: 6 })
      .withXmp(
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">' +
          '<rdf:Description>ParleyXmpNote</rdf:Description></rdf:RDF></x:xmpmeta>',
      )
      .toBuffer();
    // The input really carries the orientation and the GPS data.
    const input = await sharp(jpeg).metadata();
    expect(input.orientation).toBe(6);
    expect(input.exif?.includes(GPS_MARKER)).toBe(true);
    expect(jpeg.includes(GPS_MARKER)).toBe(true);
    expect(input.xmp?.includes('ParleyXmpNote')).toBe(true);

    const path = await writeTemp(jpeg);
    expect(await probeImage(path, LIMITS)).toMatchObject({ width: 100, height: 300 });
    const originalOut = outPath();
    const rendered = await renderImage(path, { ...LIMITS, originalOut });
    expect([rendered.width, rendered.height]).toEqual([100, 300]);

    const original = await readFile(originalOut);
    const renditions = [original, ...rendered.thumbnails.map((thumbnail) => thumbnail.data)];
    for (const rendition of renditions) {
      const metadata = await sharp(rendition).metadata();
      expect(metadata.exif).toBeUndefined();
      expect(metadata.xmp).toBeUndefined();
      expect(metadata.orientation).toBeUndefined();
      expect(rendition.includes(GPS_MARKER)).toBe(false);
      expect(rendition.includes('ParleyPhone')).toBe(false);
      expect(rendition.includes('ParleyXmpNote')).toBe(false);
      // Upright: portrait, as the orientation said.
      expect(metadata.height).toBeGreaterThan(metadata.width);
    }
    expect(rendered.thumbnails.map((t) => [t.width, t.height])).toEqual([
      [85, 256],
      [100, 300],
    ]);
  });

  it('converts a wide-gamut image to sRGB and drops its ICC profile', async () => {
    const png = await picture(50, 50).withIccProfile('p3').png().toBuffer();
    expect((await sharp(png).metadata()).icc).toBeDefined();
    const originalOut = outPath();
    const rendered = await renderImage(await writeTemp(png), { ...LIMITS, originalOut });
    for (const rendition of [await readFile(originalOut), ...rendered.thumbnails.map((t) => t.data)]) {
      expect((await sharp(rendition).metadata()).icc).toBeUndefined();
    }
  });
});

describe('refused images', () => {
  it('refuses a decompression bomb from its header alone, quickly', async () => {
    const bomb = pngDeclaring(100_000, 100_000);
    expect(bomb.length).toBeLessThan(2000);
    expect(await sniffContentType(bomb)).toBe('image/png');
    const path = await writeTemp(bomb);
    const started = performance.now();
    expect(await rejectionReason(probeImage(path, LIMITS))).toBe('too_many_pixels');
    expect(await rejectionReason(renderImage(path, { ...LIMITS, originalOut: outPath() }))).toBe(
      'too_many_pixels',
    );
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('refuses an image one pixel over the limit', async () => {
    const path = await writeTemp(await picture(100, 100).png().toBuffer());
    expect(await rejectionReason(probeImage(path, { maxPixels: 9_999 }))).toBe('too_many_pixels');
    expect(await probeImage(path, { maxPixels: 10_000 })).toMatchObject({ width: 100, height: 100 });
  });

  it('refuses a corrupt or truncated JPEG as unreadable', async () => {
    const jpeg = await picture(400, 300).jpeg().toBuffer();
    const junk = await writeTemp(Buffer.concat([jpeg.subarray(0, 2), Buffer.alloc(500, 0x41)]));
    expect(await rejectionReason(probeImage(junk, LIMITS))).toBe('unreadable');
    const truncated = await writeTemp(jpeg.subarray(0, Math.floor(jpeg.length / 2)));
    expect(await rejectionReason(renderImage(truncated, { ...LIMITS, originalOut: outPath() }))).toBe(
      'unreadable',
    );
  });

  it('refuses a file that is no image at all as unreadable; a missing file is an error of its own', async () => {
    const text = await writeTemp(Buffer.from('just some words\n'));
    expect(await rejectionReason(probeImage(text, LIMITS))).toBe('unreadable');
    await expect(probeImage(join(dir, 'missing.png'), LIMITS)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('sniffContentType', () => {
  const sniff = (text: string) => sniffContentType(Buffer.from(text, 'utf8'));

  it('names HTML as a browser would render it, whatever precedes it', async () => {
    expect(await sniff('<!DOCTYPE html><title>x</title>')).toBe('text/html');
    expect(await sniff('\ufeff  \n<HTML><body>hi</body></HTML>')).toBe('text/html');
    expect(await sniff('<script>alert(1)</script>')).toBe('text/html');
    expect(await sniff('  <iframe src="https://example.com">')).toBe('text/html');
    expect(await sniff('<head><meta charset="utf-8">')).toBe('text/html');
    expect(await sniff('<body onload="alert(1)">')).toBe('text/html');
    expect(await sniff('<!-- a comment --><p>hello')).toBe('text/html');
    expect(await sniff('<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"/>')).toBe(
      'text/html',
    );
  });

  it('names SVG with and without an XML prolog', async () => {
    const svg =
      '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>';
    expect(await sniff(svg)).toBe('image/svg+xml');
    expect(await sniff(`<?xml version="1.0" encoding="UTF-8"?>\n${svg}`)).toBe('image/svg+xml');
    expect(
      await sniff(
        `<?xml version="1.0"?>\n<!-- drawn by hand -->\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" ` +
          `"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n${svg}`,
      ),
    ).toBe('image/svg+xml');
    expect(await sniff('<svg:svg xmlns:svg="http://www.w3.org/2000/svg"/>')).toBe('image/svg+xml');
  });

  it('names other XML application/xml', async () => {
    expect(await sniff('<?xml version="1.0"?><note><to>you</to></note>')).toBe('application/xml');
  });

  it('names UTF-8 text text/plain, a character cut by the sample end included', async () => {
    expect(await sniff('Hello, world.\r\n\tIndented; 😀 ünïcödé\f')).toBe('text/plain');
    expect(await sniff('a < b, and <header> is not a tag here')).toBe('text/plain');
    const long = Buffer.from(`${'a'.repeat(SNIFF_BYTES - 1)}é`, 'utf8');
    expect(await sniffContentType(long.subarray(0, SNIFF_BYTES))).toBe('text/plain');
  });

  it('names binary junk, control characters, invalid UTF-8 and nothing at all application/octet-stream', async () => {
    expect(await sniffContentType(new Uint8Array([0x13, 0x37, 0x00, 0xff, 0xfe, 0x01, 0x02]))).toBe(
      'application/octet-stream',
    );
    expect(await sniff('text with a NUL\u0000 inside')).toBe('application/octet-stream');
    expect(await sniff('text with an escape \u001b[31m')).toBe('application/octet-stream');
    expect(await sniffContentType(new Uint8Array([0x61, 0xc3, 0x28, 0x62]))).toBe('application/octet-stream');
    expect(await sniffContentType(new Uint8Array())).toBe('application/octet-stream');
  });

  it('goes by the bytes only: a PNG claimed as .txt is image/png', async () => {
    const png = await picture(10, 10).png().toBuffer();
    const path = await writeTemp(png, '.txt');
    expect(await sniffContentType((await readFile(path)).subarray(0, SNIFF_BYTES))).toBe('image/png');
  });
});

describe('isServedInline and isProcessableImage', () => {
  it('serves only the allow-listed types inline', () => {
    for (const type of ['image/png', 'image/jpeg', 'IMAGE/GIF', 'text/plain', 'text/plain; charset=utf-8']) {
      expect(isServedInline(type), type).toBe(true);
    }
    for (const type of ['audio/mpeg', 'video/mp4', 'image/webp', 'image/avif']) {
      expect(isServedInline(type), type).toBe(true);
    }
    for (const type of [
      'text/html',
      'image/svg+xml',
      'application/xml',
      'text/xml',
      'application/xhtml+xml',
      'text/javascript',
      'application/javascript',
      'application/x-javascript',
      'application/ecmascript',
      'application/octet-stream',
      'application/pdf',
      'text/css',
      'image/bmp',
      '',
    ]) {
      expect(isServedInline(type), type).toBe(false);
    }
  });

  it('processes the raster formats libvips reads, and HEIC only where it decodes HEVC', () => {
    for (const type of ['image/jpeg', 'image/png', 'image/gif', 'image/webp', 'image/avif']) {
      expect(isProcessableImage(type), type).toBe(true);
    }
    for (const type of ['image/svg+xml', 'text/plain', 'application/pdf', 'image/bmp', 'image/tiff']) {
      expect(isProcessableImage(type), type).toBe(false);
    }
    expect(isProcessableImage('image/heic')).toBe(canDecodeHeic());
  });
});
