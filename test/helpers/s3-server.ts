import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import S3rver, { type S3rverMiddleware } from 's3rver';
import type { S3StorageOptions } from '../../src/storage/s3-storage.ts';

/** An S3-compatible server on loopback (s3rver, objects in a temp directory) with one bucket. */
export interface TestS3Server {
  /** What an `S3Storage` needs to use the bucket (give each test its own `prefix`). */
  options: S3StorageOptions;
  /** The ids of the multipart uploads begun and neither completed nor aborted: what a failed put must not leave. */
  pendingMultipartUploads(): Promise<string[]>;
  /** Stops the server and removes its directory. */
  close(): Promise<void>;
}

const BUCKET = 'parley-test';

/** Where s3rver 3.7 keeps the parts of a bucket's multipart uploads, one directory per upload id. */
function uploadsDirectory(directory: string, bucket: string): string {
  return join(directory, bucket, '._S3rver_uploads');
}

/**
 * AbortMultipartUpload (DELETE `/<bucket>/<key>?uploadId=…`), which s3rver 3.7 does not implement (it answers 405
 * MethodNotAllowed) and S3 and MinIO do: without it, no test could tell whether a failed put cleaned up after
 * itself. Unauthenticated, like nothing else in s3rver: this server is a test's, on loopback.
 */
function abortMultipartUpload(directory: string): S3rverMiddleware {
  return async (context, next) => {
    const uploadId = context.query.uploadId;
    const bucket = context.path.split('/')[1];
    if (context.method !== 'DELETE' || typeof uploadId !== 'string' || bucket === undefined) return next();
    if (!/^[0-9a-f]+$/.test(uploadId)) {
      context.status = 404;
      return;
    }
    await rm(join(uploadsDirectory(directory, bucket), uploadId), { recursive: true, force: true });
    context.status = 204;
    context.body = null;
  };
}

/**
 * ListParts (GET `/<bucket>/<key>?uploadId=…`), which s3rver 3.7 does not implement (it answers 405) and S3 and
 * MinIO do: `@tus/s3-store` asks it where a resumable upload stands. Built from s3rver's own files of the
 * upload (a file per part, and its MD5 beside it); NoSuchUpload once the upload is completed or aborted.
 */
function listParts(directory: string): S3rverMiddleware {
  return async (context, next) => {
    const uploadId = context.query.uploadId;
    const [, bucket, ...keyParts] = context.path.split('/');
    if (context.method !== 'GET' || typeof uploadId !== 'string' || bucket === undefined) return next();
    const uploadDirectory = join(uploadsDirectory(directory, bucket), uploadId);
    context.type = 'application/xml';
    let names: string[];
    try {
      names = /^[0-9a-f]+$/.test(uploadId) ? await readdir(uploadDirectory) : [];
    } catch {
      names = [];
    }
    if (names.length === 0) {
      context.status = 404;
      context.body =
        '<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchUpload</Code>' +
        '<Message>The specified upload does not exist.</Message></Error>';
      return;
    }
    const numbers = names
      .filter((name) => /^\d+$/.test(name))
      .map(Number)
      .sort((a, b) => a - b);
    const parts = await Promise.all(
      numbers.map(async (number) => {
        const path = join(uploadDirectory, String(number));
        const [info, md5] = await Promise.all([stat(path), readFile(`${path}.md5`, 'utf8')]);
        return (
          `<Part><PartNumber>${number}</PartNumber><LastModified>${info.mtime.toISOString()}</LastModified>` +
          `<ETag>"${md5}"</ETag><Size>${info.size}</Size></Part>`
        );
      }),
    );
    context.status = 200;
    context.body =
      '<?xml version="1.0" encoding="UTF-8"?><ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Bucket>${bucket}</Bucket><Key>${keyParts.join('/')}</Key><UploadId>${uploadId}</UploadId>` +
      `<MaxParts>10000</MaxParts><IsTruncated>false</IsTruncated>${parts.join('')}</ListPartsResult>`;
  };
}

/** Starts s3rver on 127.0.0.1 on a free port, in a fresh temp directory, with the bucket created. */
export async function startS3Server(): Promise<TestS3Server> {
  const directory = await mkdtemp(join(tmpdir(), 'parley-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    configureBuckets: [{ name: BUCKET }],
  });
  server.middleware.unshift(abortMultipartUpload(directory), listParts(directory));
  let address;
  try {
    address = await server.run();
  } catch (error) {
    await rm(directory, { recursive: true, force: true });
    throw error;
  }
  return {
    options: {
      endpoint: `http://127.0.0.1:${address.port}`,
      region: 'us-east-1',
      bucket: BUCKET,
      accessKeyId: 'S3RVER',
      secretAccessKey: 'S3RVER',
      forcePathStyle: true,
    },
    async pendingMultipartUploads() {
      try {
        return await readdir(uploadsDirectory(directory, BUCKET));
      } catch (error) {
        if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return [];
        throw error;
      }
    },
    async close() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
