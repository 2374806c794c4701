// Image attachments (docs/ATTACHMENTS.md, "What Parley does with the bytes"): the background worker probes
// the file (header only, so a decompression bomb is refused before any pixel is decoded), then re-encodes
// the original without its metadata and makes WebP thumbnails. Works on a local file, never a network
// stream: the worker copies the stored object to a temporary file first.
import { stat } from 'node:fs/promises';
import sharp from 'sharp';
import type { Metadata, Sharp, SharpOptions } from 'sharp';

// libvips' operation cache keeps recent images and results in memory for reuse; a server that processes
// each upload once gains nothing from it and would grow. Thread count stays libvips' default (the cores).
sharp.cache(false);

/** The most pixels (width × height; all frames together, for an animation kept animated) Parley decodes. */
export const DEFAULT_MAX_PIXELS = 40_000_000;

/** The long sides of the thumbnails made of every image, in pixels. */
export const THUMBNAIL_LONG_SIDES = [256, 1024] as const;

/** Why an image was not processed. */
export type ImageRejectedReason = 'too_many_pixels' | 'unreadable';

/** An image Parley will not process: too large to decode safely, or not an image libvips can read. */
export class ImageRejectedError extends Error {
  override readonly name = 'ImageRejectedError';
  constructor(
    readonly reason: ImageRejectedReason,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The limits every image is read under. */
export interface ImageLimits {
  /** The most pixels decoded; DEFAULT_MAX_PIXELS unless the operator says otherwise. */
  maxPixels: number;
}

/** What an image's header says, read without decoding it. */
export interface ImageProbe {
  /** Width once the EXIF orientation is applied. */
  width: number;
  /** Height (of one frame) once the EXIF orientation is applied. */
  height: number;
  /** libvips' loader name: jpeg, png, webp, gif, heif (AVIF and HEIC both)… */
  format: string;
  /** The compression inside a HEIF container: av1 (AVIF) or hevc (HEIC). */
  compression?: string;
  /** Frames of an animation (or pages); absent for a still image. */
  pages?: number;
}

/** One thumbnail: WebP, fitting inside longSide × longSide, never larger than the image. */
export interface Thumbnail {
  longSide: (typeof THUMBNAIL_LONG_SIDES)[number];
  width: number;
  height: number;
  contentType: 'image/webp';
  data: Buffer;
}

/** What renderImage produced. */
export interface RenderedImage {
  /** Dimensions once the EXIF orientation is applied (of one frame, for an animation). */
  width: number;
  height: number;
  /** The re-encoded original written to `originalOut`: its type (what to serve it as) and byte count. */
  original: { contentType: string; size: number };
  thumbnails: Thumbnail[];
}

/** Options of renderImage. */
export interface RenderOptions extends ImageLimits {
  /** Where the re-encoded original is written (a path on local disk). */
  originalOut: string;
}

/** How the input is read, whatever the output: pixel limit, orientation, and what counts as broken. */
function readOptions(limits: ImageLimits, animated: boolean): SharpOptions {
  return {
    limitInputPixels: limits.maxPixels,
    autoOrient: true,
    animated,
    // Refuses truncated files and decoder errors; tolerates mere warnings, which cameras' JPEGs often raise.
    failOn: 'truncated',
  };
}

/** sharp reports a pixel-limit refusal only through its message. */
function isPixelLimitError(error: unknown): boolean {
  return error instanceof Error && /pixel limit/i.test(error.message);
}

/** Wraps whatever sharp threw as the rejection it stands for. */
function rejectionFor(error: unknown): ImageRejectedError {
  if (error instanceof ImageRejectedError) return error;
  if (isPixelLimitError(error)) {
    return new ImageRejectedError('too_many_pixels', 'The image has more pixels than allowed.', {
      cause: error,
    });
  }
  return new ImageRejectedError('unreadable', 'The file is not an image that can be read.', { cause: error });
}

/**
 * Reads the image's header only and refuses it (ImageRejectedError) when unreadable or when one frame has
 * more than `maxPixels`: nothing is decoded, so a bomb costs nothing. An animation whose frames together
 * exceed the limit passes; renderImage then keeps only its first frame.
 */
export async function probeImage(path: string, limits: ImageLimits): Promise<ImageProbe> {
  // A missing or unreadable file is the worker's failure (worth a retry), not the image's: it throws as is.
  await stat(path);
  let metadata: Metadata;
  try {
    metadata = await sharp(path, readOptions(limits, false)).metadata();
  } catch (error) {
    throw rejectionFor(error);
  }
  const { width, height } = metadata.autoOrient;
  // Without `pages`, sharp's header gives one frame's size and the number of frames.
  const pages = metadata.pages !== undefined && metadata.pages > 1 ? metadata.pages : undefined;
  if (!(width > 0 && height > 0)) throw rejectionFor(new Error('The image has no size.'));
  if (width * height > limits.maxPixels) {
    throw new ImageRejectedError(
      'too_many_pixels',
      `The image has ${width}×${height} pixels, more than the ${limits.maxPixels} allowed.`,
    );
  }
  return {
    width,
    height,
    format: metadata.format,
    ...(metadata.compression !== undefined ? { compression: metadata.compression } : {}),
    ...(pages !== undefined ? { pages } : {}),
  };
}

/**
 * How the original is re-encoded, by loader: the same format where sharp writes it; HEIC (which prebuilt
 * libvips cannot write) as JPEG, the format any viewer shows a photo in. Encoding without `keepMetadata`
 * drops EXIF (GPS included), XMP, IPTC and the ICC profile, after converting the pixels to sRGB.
 */
function encodeOriginal(pipeline: Sharp, probe: ImageProbe): { pipeline: Sharp; contentType: string } {
  switch (probe.format) {
    case 'png':
      return { pipeline: pipeline.png({ compressionLevel: 9 }), contentType: 'image/png' };
    case 'webp':
      return { pipeline: pipeline.webp({ quality: 90 }), contentType: 'image/webp' };
    case 'gif':
      return { pipeline: pipeline.gif(), contentType: 'image/gif' };
    case 'heif':
      // AVIF encoding is slow; effort 2 (of 0–9, default 4) keeps a large photo to seconds.
      if (probe.compression === 'av1') {
        return { pipeline: pipeline.avif({ quality: 60, effort: 2 }), contentType: 'image/avif' };
      }
      return { pipeline: pipeline.jpeg({ quality: 90, mozjpeg: true }), contentType: 'image/jpeg' };
    default:
      // JPEG, and anything else libvips read: a JPEG shows everywhere.
      return { pipeline: pipeline.jpeg({ quality: 90, mozjpeg: true }), contentType: 'image/jpeg' };
  }
}

/**
 * Probes the image (refusing bombs and unreadable files with ImageRejectedError), writes the original to
 * `originalOut` re-encoded with the EXIF orientation applied and no metadata (an animation stays animated
 * when all its frames fit within maxPixels; otherwise its first frame is kept), and makes the 256 px and
 * 1024 px WebP thumbnails of the first frame. Both are always made; neither enlarges, so an image smaller
 * than a size gets a thumbnail of its own size there. On failure `originalOut` may hold a partial file: it
 * belongs to the caller's temporary directory.
 */
export async function renderImage(inputPath: string, options: RenderOptions): Promise<RenderedImage> {
  const limits: ImageLimits = { maxPixels: options.maxPixels };
  const probe = await probeImage(inputPath, limits);
  const animated =
    probe.pages !== undefined &&
    (probe.format === 'gif' || probe.format === 'webp') &&
    probe.width * probe.height * probe.pages <= limits.maxPixels;
  try {
    const original = encodeOriginal(sharp(inputPath, readOptions(limits, animated)), probe);
    const written = await original.pipeline.toFile(options.originalOut);
    const thumbnails: Thumbnail[] = [];
    for (const longSide of THUMBNAIL_LONG_SIDES) {
      const { data, info } = await sharp(inputPath, readOptions(limits, false))
        .resize(longSide, longSide, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality: 80 })
        .toBuffer({ resolveWithObject: true });
      thumbnails.push({ longSide, width: info.width, height: info.height, contentType: 'image/webp', data });
    }
    return {
      width: probe.width,
      height: probe.height,
      original: { contentType: original.contentType, size: written.size },
      thumbnails,
    };
  } catch (error) {
    throw rejectionFor(error);
  }
}
