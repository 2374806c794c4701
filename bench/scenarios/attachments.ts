import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as hdr from 'hdr-histogram-js';
import sharp from 'sharp';
import { request } from 'undici';
import type { BenchResult } from '../lib/report.ts';
import { createTenant, putUsers, processStats, type BenchTenant } from '../lib/seed.ts';
import { createBenchDatabase, startBenchServer, type BenchServer } from '../lib/server.ts';
import { startS3Server } from '../../test/helpers/s3-server.ts';

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

/** Downloads an attachment's bytes (following S3's redirect to a presigned GET), counting them: the count. */
async function download(base: string, tenant: BenchTenant, id: string): Promise<number> {
  const headers = { authorization: `Bearer ${tenant.apiKey.secret}`, 'x-parley-user': 'uploader' };
  const attachment = (await (await fetch(`${base}/v1/attachments/${id}`, { headers })).json()) as {
    url: string;
  };
  // undici's own request (Node streams, as a server-side client would use), not fetch's web streams.
  let response = await request(`${base}${attachment.url}`);
  if (response.statusCode === 302) {
    await response.body.dump();
    response = await request(String(response.headers.location));
  }
  if (response.statusCode !== 200) throw new Error(`download: ${response.statusCode}`);
  let bytes = 0;
  for await (const chunk of response.body) bytes += (chunk as Buffer).length;
  return bytes;
}

/**
 * Upload and download throughput of one storage backend: `files` uploads of `mib` MiB one at a time, then
 * the same files downloaded one at a time (MiB/s over the whole set).
 */
async function throughput(
  server: BenchServer,
  tenant: BenchTenant,
  mib: number,
  files: number,
  chunk: Buffer,
) {
  const ids: string[] = [];
  let started = performance.now();
  for (let i = 0; i < files; i += 1) {
    ids.push((await upload(server.url, tenant, 'uploader', `t-${mib}.bin`, mib * 1024 * 1024, chunk)).id);
  }
  const upload_mib_per_s = (mib * files) / ((performance.now() - started) / 1000);
  started = performance.now();
  for (const id of ids) {
    const bytes = await download(server.url, tenant, id);
    if (bytes !== mib * 1024 * 1024) throw new Error(`download: ${bytes} bytes, not ${mib} MiB`);
  }
  const download_mib_per_s = (mib * files) / ((performance.now() - started) / 1000);
  return { upload_mib_per_s, download_mib_per_s };
}

/**
 * What a plain `cp` of a `mib` MiB file does on the disk of `directory`, MiB/s, best of 3: as is (into the
 * page cache), and followed by `sync` of the copy (to the disk, as Parley's disk storage does with every upload).
 */
async function copyBaseline(
  directory: string,
  mib: number,
  chunk: Buffer,
): Promise<{ cp: number; cpSync: number }> {
  const source = path.join(directory, 'cp-source.bin');
  const target = path.join(directory, 'cp-target.bin');
  await pipeline(
    Readable.from(
      (function* () {
        for (let sent = 0; sent < mib * 1024 * 1024; sent += chunk.length) yield chunk;
      })(),
    ),
    createWriteStream(source),
  );
  const bestOf = async (command: string[]) => {
    let best = 0;
    for (let i = 0; i < 3; i += 1) {
      await rm(target, { force: true });
      const started = performance.now();
      execFileSync(command[0] ?? 'cp', command.slice(1));
      best = Math.max(best, mib / ((performance.now() - started) / 1000));
    }
    return best;
  };
  const cp = await bestOf(['cp', source, target]);
  const cpSync = await bestOf(['sh', '-c', 'cp "$0" "$1" && sync "$1"', source, target]);
  await rm(source, { force: true });
  await rm(target, { force: true });
  return { cp, cpSync };
}

// What Node alone does with the same files over the same loopback: a server with nothing of Parley in it
// (node:http, a 1 MiB read stream to send, the body hashed and written to a file and fsynced on receipt),
// driven by the same client. Parley's figures can approach this, not `cp`, which copies memory to memory.
const PLAIN_HTTP_SERVER = `
const http = require('node:http');
const fs = require('node:fs');
const crypto = require('node:crypto');
const { pipeline } = require('node:stream/promises');
const { Transform } = require('node:stream');
const [file] = process.argv.slice(1);
const server = http.createServer(async (req, res) => {
  if (req.method === 'GET') {
    res.setHeader('content-length', String(fs.statSync(file).size));
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(res);
    return;
  }
  const hash = crypto.createHash('sha256');
  // flush: fsynced before it closes, which the pipeline waits for.
  const out = fs.createWriteStream(file, { highWaterMark: 1 << 20, flush: true });
  await pipeline(req, new Transform({ transform(chunk, _e, cb) { hash.update(chunk); cb(null, chunk); } }), out);
  res.end(hash.digest('hex'));
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** Bare Node's upload and download throughput (MiB/s) of `files` files of `mib` MiB, one at a time. */
async function plainHttpThroughput(directory: string, mib: number, files: number, chunk: Buffer) {
  const child = spawn(process.execPath, ['-e', PLAIN_HTTP_SERVER, path.join(directory, 'plain.bin')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const port = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (data: Buffer) => resolve(data.toString().trim()));
      child.once('exit', (code) => reject(new Error(`plain HTTP server exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}/`;
    const size = mib * 1024 * 1024;
    let started = performance.now();
    for (let i = 0; i < files; i += 1) {
      const body = Readable.from(
        (function* () {
          for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
        })(),
      );
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-length': String(size) },
        body,
      });
      await response.body.text();
    }
    const upload = (mib * files) / ((performance.now() - started) / 1000);
    started = performance.now();
    for (let i = 0; i < files; i += 1) {
      const response = await request(url);
      let bytes = 0;
      for await (const part of response.body) bytes += (part as Buffer).length;
      if (bytes !== size) throw new Error(`plain download: ${bytes} bytes`);
    }
    const download = (mib * files) / ((performance.now() - started) / 1000);
    return { upload, download };
  } finally {
    child.kill();
    await rm(path.join(directory, 'plain.bin'), { force: true });
  }
}

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
    photo_pixels: '4000x3000 JPEG',
    throughput_files: { mib_1: isQuick ? 20 : 100, mib_100: isQuick ? 1 : 5 },
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
          width: 4000,
          height: 3000,
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
            headers: {
              ...headers,
              authorization: `Bearer ${tenant.apiKey.secret}`,
              'x-parley-user': 'uploader',
            },
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

    // Throughput on the disk, against `cp` of the same size on the same disk, and then on S3 (s3rver on
    // loopback: a second server process on the same database, storing in the bucket).
    {
      const baseline = await copyBaseline(database.dataDir, 100, chunk);
      figures.cp_100mib_mib_per_s = baseline.cp;
      figures.cp_sync_100mib_mib_per_s = baseline.cpSync;
      const small = await throughput(server, tenant, 1, params.throughput_files.mib_1, chunk);
      const large = await throughput(server, tenant, 100, params.throughput_files.mib_100, chunk);
      figures.disk_1mib_upload_mib_per_s = small.upload_mib_per_s;
      figures.disk_1mib_download_mib_per_s = small.download_mib_per_s;
      figures.disk_100mib_upload_mib_per_s = large.upload_mib_per_s;
      figures.disk_100mib_download_mib_per_s = large.download_mib_per_s;
      figures.disk_100mib_upload_vs_cp = large.upload_mib_per_s / figures.cp_100mib_mib_per_s;
      figures.disk_100mib_download_vs_cp = large.download_mib_per_s / figures.cp_100mib_mib_per_s;
      figures.disk_100mib_upload_vs_cp_sync = large.upload_mib_per_s / baseline.cpSync;
      const plain = await plainHttpThroughput(database.dataDir, 100, params.throughput_files.mib_100, chunk);
      figures.plain_http_100mib_upload_mib_per_s = plain.upload;
      figures.plain_http_100mib_download_mib_per_s = plain.download;
      figures.disk_100mib_upload_vs_plain_http = large.upload_mib_per_s / plain.upload;
      figures.disk_100mib_download_vs_plain_http = large.download_mib_per_s / plain.download;
      await server.stop();
      const s3 = await startS3Server();
      const s3Server = await startBenchServer(database, {
        PARLEY_ATTACHMENT_MAX_BYTES: String(2 * 1024 ** 3),
        PARLEY_STORAGE_QUOTA_BYTES: String(64 * 1024 ** 3),
        PARLEY_STORAGE: 's3',
        PARLEY_S3_ENDPOINT: s3.options.endpoint ?? '',
        PARLEY_S3_BUCKET: s3.options.bucket,
        PARLEY_S3_ACCESS_KEY_ID: s3.options.accessKeyId ?? '',
        PARLEY_S3_SECRET_ACCESS_KEY: s3.options.secretAccessKey ?? '',
        PARLEY_S3_FORCE_PATH_STYLE: 'true',
      });
      try {
        const s3Small = await throughput(s3Server, tenant, 1, params.throughput_files.mib_1, chunk);
        const s3Large = await throughput(s3Server, tenant, 100, params.throughput_files.mib_100, chunk);
        figures.s3_1mib_upload_mib_per_s = s3Small.upload_mib_per_s;
        figures.s3_1mib_download_mib_per_s = s3Small.download_mib_per_s;
        figures.s3_100mib_upload_mib_per_s = s3Large.upload_mib_per_s;
        figures.s3_100mib_download_mib_per_s = s3Large.download_mib_per_s;
      } finally {
        await s3Server.stop();
        await s3.close();
      }
    }

    return {
      scenario: 'attachments',
      db,
      params,
      figures,
      targets: {
        large_upload_rss_growth_mib: { max: 32 },
        photos_unprocessed: { max: 0 },
        disk_100mib_upload_vs_cp: { min: 0.7 },
        disk_100mib_download_vs_cp: { min: 0.7 },
      },
      notes: [
        'server: one process, local disk storage under its data directory; generator: this process, same cores',
        'large_upload_rss_growth_mib: peak VmRSS of the server while the large file streams, minus before it',
        'photos_per_s: from the first upload to the last one ready (original re-encoded, two WebP thumbnails)',
        'throughput: one file at a time through HTTP on loopback (multipart up, the signed link down); cp: best of 3 plain cp of 100 MiB on the same disk (into the page cache), cp_sync: the same followed by sync of the copy (Parley fsyncs each upload)',
        'plain_http_*: the same files through a bare node:http server (no Parley code: a 1 MiB read stream out; in, hashed, written and fsynced), the same client: what Node over loopback reaches here',
        's3_*: the same through s3rver on loopback (a Node S3 emulator: its speed, not S3’s, bounds these)',
      ],
    };
  } finally {
    await server.stop();
    await database.drop();
  }
}
