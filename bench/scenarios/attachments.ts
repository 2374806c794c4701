import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import * as hdr from 'hdr-histogram-js';
import sharp from 'sharp';
import { request } from 'undici';
import type { BenchResult } from '../lib/report.ts';
import { createTenant, putUsers, processStats, type BenchTenant } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer } from '../lib/server.ts';

/** One upload's multipart body, streamed: its parts written around `size` bytes repeated from `chunk`. */
function multipartUpload(fileName: string, size: number, chunk: Buffer) {
  const boundary = `----parley-bench-${randomBytes(8).toString('hex')}`;
  const head = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${fileName}"\r\n` +
      'Content-Type: application/octet-stream\r\n\r\n',
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  function* body() {
    yield head;
    for (let sent = 0; sent < size; sent += chunk.length) {
      yield sent + chunk.length <= size ? chunk : chunk.subarray(0, size - sent);
    }
    yield tail;
  }
  return {
    headers: {
      'content-type': `multipart/form-data; boundary=${boundary}`,
      'content-length': String(head.length + size + tail.length),
    },
    body: Readable.from(body()),
  };
}

async function upload(
  base: string,
  tenant: BenchTenant,
  userId: string,
  fileName: string,
  size: number,
  chunk: Buffer,
): Promise<{ id: string; status: string }> {
  const { headers, body } = multipartUpload(fileName, size, chunk);
  const response = await request(`${base}/v1/attachments`, {
    method: 'POST',
    headers: { ...headers, authorization: `Bearer ${tenant.apiKey.secret}`, 'x-parley-user': userId },
    body,
  });
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`upload: ${response.statusCode} ${text}`);
  return JSON.parse(text) as { id: string; status: string };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Attachments (docs/ATTACHMENTS.md): uploads of 1 MiB files at a few at a time (per second, latency), the
 * server's memory while one large file streams through it (it must not hold the file), and how fast
 * uploaded photos are processed into thumbnails.
 */
export async function attachments(db: 'embedded' | 'postgres', isQuick: boolean): Promise<BenchResult> {
  const params = {
    uploads: isQuick ? 40 : 400,
    upload_mib: 1,
    concurrency: 8,
    large_mib: isQuick ? 64 : 1024,
    photos: isQuick ? 4 : 20,
    photo_pixels: '3000x2000 JPEG',
  };
  const database = await createBenchDatabase(db);
  const server = await startBenchServer(database, {
    PARLEY_ATTACHMENT_MAX_BYTES: String(2 * 1024 ** 3),
    PARLEY_STORAGE_QUOTA_BYTES: String(64 * 1024 ** 3),
  });
  const pid = server.child.pid ?? 0;
  try {
    const tenant = await createTenant(server.url);
    await putUsers(server.url, tenant, ['uploader']);
    const chunk = randomBytes(64 * 1024);
    const figures: Record<string, number> = {};

    // Warm-up: the upload path's code, loaded and compiled.
    for (let i = 0; i < 5; i += 1)
      await upload(server.url, tenant, 'uploader', 'warm.bin', 1024 * 1024, chunk);

    // Many 1 MiB uploads, `concurrency` at a time.
    {
      const latency = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000 });
      let next = 0;
      const started = performance.now();
      await Promise.all(
        Array.from({ length: params.concurrency }, async () => {
          while (next < params.uploads) {
            next += 1;
            const at = performance.now();
            await upload(server.url, tenant, 'uploader', 'file.bin', params.upload_mib * 1024 * 1024, chunk);
            latency.recordValue(Math.max(1, Math.round(performance.now() - at)));
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      figures.uploads_per_s = params.uploads / seconds;
      figures.upload_mib_per_s = (params.uploads * params.upload_mib) / seconds;
      figures.upload_p50_ms = latency.getValueAtPercentile(50);
      figures.upload_p99_ms = latency.getValueAtPercentile(99);
    }

    // One large upload: the server's resident memory sampled while it streams.
    {
      await settle(2000);
      const before = processStats(pid).rssKiB;
      let peak = before;
      const sampler = setInterval(() => {
        peak = Math.max(peak, processStats(pid).rssKiB);
      }, 50);
      const started = performance.now();
      await upload(server.url, tenant, 'uploader', 'large.bin', params.large_mib * 1024 * 1024, chunk);
      figures.large_upload_mib_per_s = params.large_mib / ((performance.now() - started) / 1000);
      clearInterval(sampler);
      figures.large_upload_rss_growth_mib = (peak - before) / 1024;
    }

    // Photos: uploaded together, then timed until every one is ready (thumbnails made).
    {
      const photo = await sharp({
        create: {
          width: 3000,
          height: 2000,
          channels: 3,
          background: { r: 128, g: 128, b: 128 },
          noise: { type: 'gaussian', mean: 128, sigma: 40 },
        },
      })
        .jpeg({ quality: 85 })
        .toBuffer();
      const started = performance.now();
      const ids = await Promise.all(
        Array.from({ length: params.photos }, async (_, index) => {
          const { headers, body } = multipartUpload(`photo-${index}.jpg`, photo.length, photo);
          const response = await request(`${server.url}/v1/attachments`, {
            method: 'POST',
            headers: { ...headers, authorization: `Bearer ${tenant.apiKey.secret}`, 'x-parley-user': 'uploader' },
            body,
          });
          const created = (await response.body.json()) as { id: string };
          return created.id;
        }),
      );
      const pending = new Set(ids);
      const deadline = Date.now() + 300_000;
      while (pending.size > 0 && Date.now() < deadline) {
        for (const id of [...pending]) {
          const response = await request(`${server.url}/v1/attachments/${id}`, {
            headers: { authorization: `Bearer ${tenant.apiKey.secret}`, 'x-parley-user': 'uploader' },
          });
          const body = (await response.body.json()) as { status: string };
          if (body.status !== 'pending') pending.delete(id);
        }
        if (pending.size > 0) await settle(100);
      }
      figures.photos_per_s = (params.photos - pending.size) / ((performance.now() - started) / 1000);
      figures.photos_unprocessed = pending.size;
    }

    return {
      scenario: 'attachments',
      db,
      params,
      figures,
      targets: {
        large_upload_rss_growth_mib: { max: 32 },
        photos_unprocessed: { max: 0 },
      },
      notes: [
        'server: one process, local disk storage under its data directory; generator: this process, same cores',
        'large_upload_rss_growth_mib: peak VmRSS of the server while the large file streams, minus before it',
        'photos_per_s: from the first upload to the last one ready (original re-encoded, two WebP thumbnails)',
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
