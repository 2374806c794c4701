import type { Readable } from 'node:stream';
import { parseStream } from 'music-metadata';

/** Whether a sniffed type is one whose length Parley reads: audio and video. */
export const hasDuration = (contentType: string) => /^(audio|video)\//.test(contentType);

/**
 * The length of an audio or video file in milliseconds, read from its headers (music-metadata: MP3, AAC,
 * MP4/M4A/MOV, Ogg, Opus, FLAC, WAV, WebM/Matroska and more); undefined when it is neither, or its headers
 * do not say (a truncated or odd file is not an error: it simply has no duration). Reads the stream only as
 * far as the format needs (an MP4 whose index is at its end is read through).
 */
export async function mediaDurationMs(
  open: () => Promise<Readable>,
  contentType: string,
  size: number,
): Promise<number | undefined> {
  if (!hasDuration(contentType)) return undefined;
  let stream: Readable | undefined;
  try {
    stream = await open();
    const metadata = await parseStream(
      stream,
      { mimeType: contentType, size },
      { duration: true, skipCovers: true },
    );
    const seconds = metadata.format.duration;
    if (seconds === undefined || !Number.isFinite(seconds) || seconds <= 0) return undefined;
    return Math.max(1, Math.round(seconds * 1000));
  } catch {
    return undefined;
  } finally {
    stream?.destroy();
  }
}
