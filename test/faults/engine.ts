import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { faultPlan, injectFault, RecoveryProbe, type FaultRecord, type FaultTargets } from './faults.ts';
import { Ledger, request } from './http.ts';
import { Random, sleep } from './random.ts';
import { Reader } from './readers.ts';
import { runHttpSender, runSocketSender, type SendPlan } from './senders.ts';
import { serverSlots, type ServerSlot } from './servers.ts';
import { findBinaries, freePort, PostgresCluster, RedisServer } from './services.ts';
import {
  createProbeTenant,
  createWorkload,
  readHistory,
  type StoredMessage,
  type WorkloadShape,
} from './setup.ts';
import { verifyRun, type FaultVerdict } from './verify.ts';
import { WebhookCounter } from './webhooks.ts';

/** What a run does: its size, its faults and how long it may take. */
export interface FaultRunOptions extends WorkloadShape {
  seed: number;
  /** Server processes (each on a fixed port of its own). */
  servers: number;
  /** Most sends the run starts. */
  sends: number;
  /**
   * The least time senders keep sending (they go on until the last fault has recovered); `sends` are spread
   * over it, so that the budget lasts through the faults.
   */
  sendMs: number;
  /** Rounds of faults: each kills a server, restarts Redis and restarts PostgreSQL, in a random order. */
  faultRounds: number;
  /** Healthy time between two faults (a random time in this range). */
  faultGapMs: [number, number];
  /** Mean time a reader keeps a socket before it drops it. */
  readerDropMeanMs: number;
  /** Think time of senders between two sends. */
  httpThinkMs: [number, number];
  socketThinkMs: [number, number];
  /** Progress lines (the CLI prints them; the test stays quiet). */
  log: (line: string) => void;
}

/** The CI variant: about a minute on a 2-core machine, one fault of each kind. */
export const SHORT_RUN: Omit<FaultRunOptions, 'seed' | 'log'> = {
  servers: 3,
  tenants: 2,
  conversationsPerTenant: 2,
  httpSendersPerTenant: 3,
  socketSendersPerTenant: 1,
  readersPerTenant: 3,
  sends: 2_000,
  sendMs: 15_000,
  faultRounds: 1,
  faultGapMs: [1_500, 3_000],
  readerDropMeanMs: 2_500,
  httpThinkMs: [10, 60],
  socketThinkMs: [50, 120],
};

/** `npm run faults`: about 4,000 sends through three rounds of faults. */
export const FULL_RUN: Omit<FaultRunOptions, 'seed' | 'log'> = {
  servers: 3,
  tenants: 3,
  conversationsPerTenant: 3,
  httpSendersPerTenant: 4,
  socketSendersPerTenant: 1,
  readersPerTenant: 4,
  sends: 4_000,
  sendMs: 100_000,
  faultRounds: 3,
  faultGapMs: [3_000, 8_000],
  readerDropMeanMs: 3_000,
  httpThinkMs: [20, 150],
  socketThinkMs: [60, 150],
};

export interface FaultRunResult extends FaultVerdict {
  seed: number;
  faults: FaultRecord[];
  startedAt: number;
  /** Wall time of the whole run, setup and cleanup included. */
  wallMs: number;
  /** The tail of each server's output, when the run failed. */
  serverOutput: string;
  /** Webhook deliveries of the stored messages to the tenants' receiver (at least once each). */
  webhooks: { expected: number; arrived: number; repeated: number; lost: number };
}

/** How long the end of a run waits for webhook deliveries: a lane a killed server held waits its lease. */
const WEBHOOK_SETTLE_MS = 90_000;

/** Shared by every process of the run, so any of them accepts the credentials another issued. */
const ADMIN_TOKEN = 'faults-suite-operator-token-0123456789';
const SECRET_KEY = 'faults-suite-shared-server-key-0123456789abcdef';

/** Whether the suite can run on this machine, and if not, why. */
export function faultSuiteUnavailable(): string | null {
  const binaries = findBinaries();
  return 'missing' in binaries ? binaries.missing : null;
}

/**
 * Runs the fault-injection suite: its own PostgreSQL cluster and Redis on ports of their own, `servers`
 * processes started as `npm start` starts them, senders retrying with the same client_msg_id and readers
 * dropping and resuming, while it kills servers, Redis and PostgreSQL; then compares what was acknowledged,
 * stored and received. Always stops what it started and removes its directory.
 */
export async function runFaultSuite(options: FaultRunOptions): Promise<FaultRunResult> {
  const binaries = findBinaries();
  if ('missing' in binaries) throw new Error(`the fault suite cannot run here: ${binaries.missing}`);
  const began = Date.now();
  const log = options.log;
  const runDir = mkdtempSync(path.join(os.tmpdir(), 'parley-faults-'));
  // PostgreSQL runs as its own user (when the suite runs as root), which must reach its directory in here.
  chmodSync(runDir, 0o711);
  const pgDir = path.join(runDir, 'postgres');
  mkdirSync(pgDir);
  let postgres: PostgresCluster | null = null;
  let redis: RedisServer | null = null;
  let slots: ServerSlot[] = [];
  const webhooks = new WebhookCounter();
  const cleanup = () => {
    for (const slot of slots) slot.killNow();
    redis?.killNow();
    postgres?.stopNow();
    rmSync(runDir, { recursive: true, force: true });
  };
  // Should the process end without reaching `finally` (an uncaught error), still stop what the run started.
  process.once('exit', cleanup);
  try {
    await webhooks.start();
    postgres = await PostgresCluster.create(binaries, pgDir);
    redis = new RedisServer(binaries.redisServer, await freePort(), runDir);
    await redis.start();
    const ports = await Promise.all(Array.from({ length: options.servers }, () => freePort()));
    slots = serverSlots(
      ports,
      {
        DATABASE_URL: postgres.url,
        REDIS_URL: redis.url,
        PARLEY_ADMIN_TOKEN: ADMIN_TOKEN,
        PARLEY_SECRET_KEY: SECRET_KEY,
        // The tenants' webhook receiver runs on loopback, in this process.
        PARLEY_OUTBOUND_ALLOW_PRIVATE_NETWORKS: 'true',
      },
      runDir,
    );
    log(`seed ${options.seed}; PostgreSQL on 127.0.0.1:${postgres.port}, Redis on 127.0.0.1:${redis.port}`);
    const startDeadline = Date.now() + 120_000;
    // The first process migrates; the others start on the migrated database.
    await slots[0]?.start(startDeadline);
    await Promise.all(slots.slice(1).map((slot) => slot.start(startDeadline)));
    log(`servers on ports ${ports.join(', ')}`);
    return await drive(options, { postgres, redis, slots, began, webhooks });
  } finally {
    process.removeListener('exit', cleanup);
    cleanup();
    await webhooks.close();
  }
}

async function drive(
  options: FaultRunOptions,
  services: {
    postgres: PostgresCluster;
    redis: RedisServer;
    slots: ServerSlot[];
    began: number;
    webhooks: WebhookCounter;
  },
): Promise<FaultRunResult> {
  const { postgres, redis, slots, began, webhooks } = services;
  const log = options.log;
  const ledger = new Ledger();
  const setupLedger = new Ledger();
  const first = slots[0]?.url ?? '';
  const tenants = await createWorkload(setupLedger, first, ADMIN_TOKEN, options);
  for (const tenant of tenants) await webhooks.subscribe(setupLedger, first, tenant.apiKey);
  const probeTenant = await createProbeTenant(setupLedger, first, ADMIN_TOKEN);
  const targets: FaultTargets = {
    servers: slots,
    redis,
    postgres,
    probe: probeTenant,
    ledger,
    probeLedger: new Ledger(),
  };
  const probe = new RecoveryProbe(targets);
  const readers: { reader: Reader; conversationIds: string[] }[] = [];
  try {
    if ((await probe.waitForRecovery(Date.now() + 30_000)) === null) {
      throw new Error('the servers did not deliver across processes before any fault');
    }
    for (const tenant of tenants) {
      for (const { userId, token } of tenant.readers) {
        const random = Random.forActor(options.seed, `reader ${readers.length}`);
        const reader = new Reader(userId, token, slots, ledger, random, {
          dropMeanMs: options.readerDropMeanMs,
          syncFillShare: 0.3,
        });
        readers.push({ reader, conversationIds: tenant.conversationIds });
      }
    }
    await Promise.all(readers.map(({ reader }) => reader.start()));
    log(`${readers.length} readers connected; sending and injecting faults`);

    const startedAt = Date.now();
    const plan: SendPlan = {
      remaining: options.sends,
      total: options.sends,
      startedAt,
      paceMs: options.sendMs,
      sendUntil: startedAt + options.sendMs * 3,
      retryUntil: startedAt + options.sendMs * 3 + 30_000,
      records: [],
    };
    const senders = tenants.flatMap((tenant, t) =>
      tenant.senders.map((sender, s) => {
        const random = Random.forActor(options.seed, `sender ${t}.${s}`);
        const identity = { ...sender, conversationIds: tenant.conversationIds };
        return sender.via === 'http'
          ? runHttpSender(identity, slots, plan, ledger, random, options.httpThinkMs)
          : runSocketSender(identity, slots, plan, ledger, random, options.socketThinkMs);
      }),
    );
    const faultRandom = Random.forActor(options.seed, 'faults');
    const faults: FaultRecord[] = [];
    const progress = setInterval(() => {
      const acked = plan.records.filter((record) => record.ack !== null).length;
      log(
        `  +${Math.round((Date.now() - startedAt) / 1000)} s: ${plan.records.length} sends started, ${acked} acknowledged`,
      );
    }, 10_000);
    try {
      for (const kind of faultPlan(options.faultRounds, faultRandom)) {
        await sleep(faultRandom.between(...options.faultGapMs));
        const fault = await injectFault(kind, targets, probe, faultRandom);
        faults.push(fault);
        const took =
          fault.recoveredAt === null
            ? 'did not recover'
            : `recovered after ${fault.recoveredAt - fault.startedAt} ms`;
        log(`  fault ${faults.length}: ${fault.label}; ${took}`);
      }
      // Senders go on until the least send time has passed, and a little past the last recovery.
      plan.sendUntil = Math.max(startedAt + options.sendMs, Date.now() + 1_000);
      plan.retryUntil = plan.sendUntil + 30_000;
      await Promise.all(senders);
    } finally {
      clearInterval(progress);
    }
    log(`senders done: ${plan.records.length} sends; settling`);

    // Settle: no more drops; one last message in each conversation must reach every reader.
    for (const { reader } of readers) reader.stopDropping();
    const findings: string[] = [];
    const markers: string[] = [];
    for (const tenant of tenants) {
      for (const conversationId of tenant.conversationIds) {
        const marker = await sendMarker(ledger, slots, conversationId, tenant.owner.token, markers.length);
        if (marker === null) findings.push(`the end marker in ${conversationId} was never acknowledged`);
        else markers.push(marker);
      }
    }
    const settleDeadline = Date.now() + 20_000;
    while (Date.now() < settleDeadline) {
      const missing = readers.some(({ reader }) => markers.some((id) => !reader.firstSeen.has(id)));
      if (!missing) break;
      await sleep(100);
    }
    const endedAt = Date.now();
    for (const { reader } of readers) {
      await reader.stop();
      findings.push(...reader.findings.map((finding) => `${reader.userId}: ${finding}`));
    }
    for (const slot of slots) findings.push(...slot.unexpectedExits);

    const histories = new Map<string, StoredMessage[]>();
    const bases = slots.map((slot) => slot.url);
    for (const tenant of tenants) {
      for (const conversationId of tenant.conversationIds) {
        histories.set(conversationId, await readHistory(ledger, bases, conversationId, tenant.owner.token));
      }
    }
    histories.set(
      probeTenant.conversationId,
      await readHistory(ledger, bases, probeTenant.conversationId, probeTenant.senderToken),
    );
    const verdict = verifyRun({
      records: plan.records,
      histories,
      readers: readers.map(({ reader, conversationIds }) => ({ reader, conversationIds })),
      faults,
      ledger,
      startedAt,
      endedAt,
      findings,
    });
    // Every stored message of the workload reaches the tenants' webhook receiver at least once.
    const stored = tenants.flatMap((tenant) =>
      tenant.conversationIds.flatMap((conversationId) => histories.get(conversationId) ?? []),
    );
    const missing = await webhooks.missing(stored, WEBHOOK_SETTLE_MS);
    const arrivals = stored.map((message) => webhooks.arrivals.get(message.id) ?? 0);
    const webhookFigures = {
      expected: stored.length,
      arrived: arrivals.filter((count) => count > 0).length,
      repeated: arrivals.reduce((sum, count) => sum + Math.max(0, count - 1), 0),
      lost: missing.length,
    };
    if (missing.length > 0) {
      verdict.failures.push(`${missing.length} stored messages never reached the webhook receiver`);
      verdict.details.push(...missing.slice(0, 10).map((id) => `webhook never delivered: message ${id}`));
      verdict.details.push(...(await webhookState(postgres.url, missing)));
    }
    log(`webhooks: ${webhookFigures.arrived} of ${webhookFigures.expected} stored messages delivered`);
    const wallMs = Date.now() - began;
    const serverOutput = verdict.failures.length > 0 ? slots.map((slot) => slot.outputTail()).join('\n') : '';
    return {
      ...verdict,
      seed: options.seed,
      faults,
      startedAt,
      wallMs,
      serverOutput,
      webhooks: webhookFigures,
    };
  } finally {
    probe.close();
    await Promise.all(readers.map(({ reader }) => reader.stop()));
  }
}

/** Sends one message, retrying with the same client_msg_id on any server for up to 30 s; its id, or null. */
async function sendMarker(
  ledger: Ledger,
  slots: ServerSlot[],
  conversationId: string,
  token: string,
  n: number,
): Promise<string | null> {
  const deadline = Date.now() + 30_000;
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    const base = slots[attempt % slots.length]?.url ?? '';
    try {
      const answer = await request(
        ledger,
        base,
        'POST',
        `/v1/conversations/${conversationId}/messages`,
        token,
        {
          text: 'the end',
          client_msg_id: `end-marker-${n}`,
        },
      );
      if (answer.status < 300) return String(answer.body.id);
    } catch {
      // retried below
    }
    await sleep(200);
  }
  return null;
}

/** Where the undelivered messages are stuck, read from the database as its owner: for a failure's details. */
async function webhookState(url: string, missing: string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const queries: [string, string][] = [
      ['deliveries by status', `SELECT status, count(*)::int AS n FROM webhook_deliveries GROUP BY status`],
      [
        'missing messages: events logged / with a delivery / its status',
        `SELECT count(*)::int AS events,
                count(d.id)::int AS delivered_rows,
                string_agg(DISTINCT d.status, ',') AS statuses
         FROM events e LEFT JOIN webhook_deliveries d ON d.tenant_id = e.tenant_id AND d.event_id = e.id
         WHERE e.type = 'message.created' AND e.data->>'id' = ANY ($1::text[])`,
      ],
      [
        'lanes: idle with something pending / due / leased or waiting',
        `SELECT count(*) FILTER (WHERE l.next_attempt_at IS NULL AND EXISTS (SELECT 1 FROM webhook_deliveries d
                  WHERE d.tenant_id = l.tenant_id AND d.endpoint_id = l.endpoint_id AND d.lane = l.lane
                    AND d.status = 'pending'))::int AS idle_pending,
                count(*) FILTER (WHERE l.next_attempt_at <= now())::int AS due,
                count(*) FILTER (WHERE l.next_attempt_at > now())::int AS waiting
         FROM webhook_lanes l`,
      ],
      ['consumer positions', `SELECT tenant_id, prev, now, after_id, prev_at FROM event_consumers`],
    ];
    const lines: string[] = [];
    for (const [label, text] of queries) {
      const { rows } = await client.query(text, text.includes('$1') ? [missing] : []);
      lines.push(`webhook state, ${label}: ${JSON.stringify(rows)}`);
    }
    return lines;
  } catch (error) {
    return [`webhook state unreadable: ${String(error)}`];
  } finally {
    await client.end();
  }
}
