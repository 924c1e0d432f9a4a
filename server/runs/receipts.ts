import type { ListReceiptsRequest, ListReceiptsResponse } from '../../proto/gen/runkeys/v1/runs.js';
import { invalid } from '../errors.js';
import { toDate } from '../services/deps.js';
import type { Db } from '../store/db.js';
import { bundleContents, listReceipts, type ReceiptFilter } from '../store/reports.js';
import { nextPageToken, readPage } from '../validate/pagination.js';
import type { BundleContents } from './bundle.js';
import { RUN_ID } from './service.js';

const FINGERPRINT = /^hmac:[0-9a-f]{32}$/;
const MAX_NAME = 1024;
/** Page keys: received_at, version and run id, in that order. */
const PAGE_KEY = /^(\d{1,15})\.(\d{1,15})\.(run_[0-9a-f]{16})$/;

/**
 * The receipts of a collection, newest first, narrowed by run, bundle version and value:
 * with a name (and a fingerprint), only bundles whose recorded contents carried that name (with
 * that value) count, and each receipt shows the fingerprint the bundle carried under it.
 */
export async function listReceiptsOf(
  db: Db,
  collection: string,
  req: ListReceiptsRequest,
): Promise<ListReceiptsResponse> {
  if (req.runId !== '' && !RUN_ID.test(req.runId)) {
    throw invalid('"run_id" must be a run id such as run_0123456789abcdef');
  }
  if (!Number.isSafeInteger(req.version) || req.version < 0) {
    throw invalid(`"version" must be 0 (any) or a bundle version; got ${req.version}`);
  }
  if (req.name.length > MAX_NAME || req.name.includes('\0')) {
    throw invalid(`"name" must be at most ${MAX_NAME} characters without NUL`);
  }
  if (req.fingerprint !== '' && (req.name === '' || !FINGERPRINT.test(req.fingerprint))) {
    throw invalid('"fingerprint" must be "hmac:" and 32 hex digits, and comes with "name"');
  }
  const scope = `receipts:${collection}:${req.runId}:${req.version}:${req.name}:${req.fingerprint}`;
  const page = readPage(req.pageSize, req.pageToken, scope);
  const filter: ReceiptFilter = { collection };
  if (req.runId !== '') filter.runId = req.runId;
  if (req.version !== 0) filter.version = req.version;
  if (page.after !== '') {
    const m = PAGE_KEY.exec(page.after);
    if (m === null) {
      throw invalid('"page_token" must be the next_page_token of this same list');
    }
    filter.before = { receivedAt: Number(m[1]), version: Number(m[2]), runId: m[3]! };
  }
  // Which bundles carried the value, and its fingerprint in each.
  const carried = new Map<string, string>();
  if (req.name !== '') {
    for (const row of await bundleContents(db, collection)) {
      const items = JSON.parse(row.contents) as BundleContents;
      const hit = items.find(
        ([name, , fp]) => name === req.name && (req.fingerprint === '' || fp === req.fingerprint),
      );
      if (hit !== undefined) carried.set(row.digest, hit[2]);
    }
    filter.digests = [...carried.keys()];
  }
  const rows = await listReceipts(db, filter, page.size);
  return {
    receipts: rows.map((r) => ({
      runId: r.run_id,
      version: Number(r.version),
      applyTime: toDate(r.applied_at),
      receiveTime: toDate(r.received_at),
      envFileWritten: r.env_file === 1,
      commandStarted: r.command === 1,
      fingerprint: carried.get(r.digest) ?? '',
    })),
    nextPageToken: nextPageToken(
      scope,
      page,
      rows.map((r) => `${r.received_at}.${r.version}.${r.run_id}`),
    ),
  };
}
