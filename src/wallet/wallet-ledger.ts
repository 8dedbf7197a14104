// Wallet balances under optimistic concurrency. Every change is an UPDATE guarded by the wallet
// entity's version property: a refund loads the entity, changes it and flushes it; a top-up and a
// payment read the row and write it with the same versioned UPDATE from MikroORM's query builder,
// inside the statement that writes their other rows (wallet-writes.ts). A concurrent writer makes
// that UPDATE fail (OptimisticLockError) and the whole transaction is rerun (withOptimisticRetry).
// Every change writes a ledger entry in the same transaction, so balance = Σ ledger exactly.

import type { EntityData } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import { createHash } from "node:crypto";
import { compileQuery, insertBuilder } from "../platform/db/compiled-query.js";
import { DomainError } from "../platform/domain-error.js";
import type { Page } from "../platform/pagination.js";
import { LedgerEntry, type LedgerKind } from "./ledger-entry.entity.js";
import { Wallet } from "./wallet.entity.js";

export const MAX_TOP_UP_MINOR = 10_000_000n;

export interface WalletView {
  userId: string;
  balanceMinor: bigint;
  version: number;
  updatedAt: Date | undefined;
}

export function walletView(wallet: Wallet): WalletView {
  return {
    userId: wallet.userId,
    balanceMinor: wallet.balanceMinor,
    version: wallet.version,
    updatedAt: wallet.updatedAt,
  };
}

export function emptyWallet(userId: string): WalletView {
  return { userId, balanceMinor: 0n, version: 0, updatedAt: undefined };
}

/** Hash of a call's arguments, stored with its idempotency key to detect reuse with others. */
export function fingerprint(...parts: (string | bigint)[]): string {
  return createHash("sha256").update(parts.join("\u0000")).digest("base64url");
}

/** A wallet row as the driver returns it (property names, the bigint as a string). */
export type WalletRow = Omit<WalletView, "balanceMinor"> & {
  balanceMinor: string;
  currencyCode: string;
  createdAt: Date;
};

const walletById = compileQuery<{ userId: string }>(["userId"], (em, p) =>
  em.createQueryBuilder(Wallet).select("*").where({ userId: p.userId }),
);

/** The wallet as a plain row (no entity), or null when the user never topped up. */
export async function readWallet(em: EntityManager, userId: string): Promise<WalletView | null> {
  const row = await walletById.get<WalletRow>(em, { userId });
  // Plain rows carry raw column values: bigint arrives as a string.
  return row
    ? { userId: row.userId, balanceMinor: BigInt(row.balanceMinor), version: row.version, updatedAt: row.updatedAt }
    : null;
}

/**
 * The user's wallet as an entity managed by `em`, or null when the user never topped up. The row
 * comes from a compiled SELECT and is merged into the entity manager (em.merge), so a change is
 * flushed like that of any loaded entity: UPDATE … WHERE version = ?, OptimisticLockError when
 * another writer got there first. Not em.findOne, which builds its query from criteria on every
 * call: the compiled statement costs less CPU per transaction (bench/orm-ops.ts compares both).
 */
export async function loadWallet(em: EntityManager, userId: string): Promise<Wallet | null> {
  const row = await walletById.get<WalletRow>(em, { userId });
  return row ? mergeWallet(em, row) : null;
}

/** A wallet row read by any statement, as an entity managed by `em` whose flush is the versioned UPDATE. */
export function mergeWallet(em: EntityManager, row: WalletRow): Wallet {
  // convertCustomTypes turns the raw column values (the bigint's string) into property values.
  return em.merge(Wallet, row as unknown as EntityData<Wallet>, { convertCustomTypes: true });
}

export async function getWallet(em: EntityManager, userId: string): Promise<WalletView> {
  return (await readWallet(em, userId)) ?? emptyWallet(userId);
}

/** A ledger entry to write; every change of a balance writes one in the same transaction. */
export interface LedgerEntryInput {
  userId: string;
  kind: LedgerKind;
  amountMinor: bigint;
  balanceAfterMinor: bigint;
  idempotencyKey: string;
  requestFingerprint: string;
  reservationId: string | null;
  createdAt: Date;
}

/** A written ledger entry, as callers see it. */
export interface LedgerEntryView extends LedgerEntryInput {
  id: string;
}

export const LEDGER_FIELDS = [
  "userId",
  "kind",
  "amountMinor",
  "balanceAfterMinor",
  "idempotencyKey",
  "requestFingerprint",
  "reservationId",
  "createdAt",
] as const;

/** The INSERT of one ledger entry (… RETURNING id), for a compiled statement that writes it together with other rows. */
export const ledgerEntryInsert = insertBuilder<LedgerEntryInput>(LedgerEntry, LEDGER_FIELDS);

const insertEntry = compileQuery<LedgerEntryInput>(LEDGER_FIELDS, ledgerEntryInsert);

/** Inserts the entry and returns it with its id (INSERT … RETURNING, as the query builder writes it). */
export async function insertLedgerEntry(em: EntityManager, entry: LedgerEntryInput): Promise<LedgerEntryView> {
  const returned = await insertEntry.get<{ id: string }>(em, entry);
  if (!returned) throw new Error("the ledger INSERT returned no id");
  return { ...entry, id: String(returned.id) };
}

type LedgerRow = Omit<LedgerEntryView, "amountMinor" | "balanceAfterMinor"> & {
  amountMinor: string;
  balanceAfterMinor: string;
};

const entryByKey = compileQuery<{ userId: string; kind: LedgerKind; idempotencyKey: string }>(
  ["userId", "kind", "idempotencyKey"],
  (em, p) =>
    em
      .createQueryBuilder(LedgerEntry)
      .select("*")
      .where({ userId: p.userId, kind: p.kind, idempotencyKey: p.idempotencyKey })
      .limit(1),
);

export async function findEntry(
  em: EntityManager,
  userId: string,
  kind: LedgerKind,
  idempotencyKey: string,
): Promise<LedgerEntryView | null> {
  const row = await entryByKey.get<LedgerRow>(em, { userId, kind, idempotencyKey });
  return row
    ? {
        ...row,
        id: String(row.id),
        amountMinor: BigInt(row.amountMinor),
        balanceAfterMinor: BigInt(row.balanceAfterMinor),
      }
    : null;
}

/**
 * The wallet as `entry` left it, for a replay to answer what the first call answered: the
 * balance after the entry, the version that change made and the entry's time. The version
 * property grows by one per change and every change is exactly one ledger entry (a losing
 * concurrent writer rolls its entry back with it), so the version after an entry is the number
 * of the user's entries up to it.
 */
export async function walletAfter(
  em: EntityManager,
  entry: Pick<LedgerEntryView, "id" | "userId" | "balanceAfterMinor" | "createdAt">,
): Promise<WalletView> {
  const [row] = await em.execute<[{ version: number }]>(
    "select count(*)::int as version from ledger_entry where user_id = ? and id <= ?",
    [entry.userId, entry.id],
  );
  return {
    userId: entry.userId,
    balanceMinor: entry.balanceAfterMinor,
    version: row.version,
    updatedAt: entry.createdAt,
  };
}

/** The wallet as the ledger entry of this user, kind and key left it; null when there is no such entry. */
export async function walletAfterEntry(
  em: EntityManager,
  userId: string,
  kind: LedgerKind,
  idempotencyKey: string,
): Promise<WalletView | null> {
  const entry = await findEntry(em, userId, kind, idempotencyKey);
  return entry ? walletAfter(em, entry) : null;
}

/** The earlier result of a replayed call, or IDEMPOTENCY_KEY_REUSED if its arguments differ. */
export function replay(entry: LedgerEntryView, requestFingerprint: string): LedgerEntryView {
  if (entry.requestFingerprint !== requestFingerprint) {
    throw new DomainError(
      "IDEMPOTENCY_KEY_REUSED",
      `idempotency key ${entry.idempotencyKey} was used before with other arguments`,
      [],
      {
        idempotency_key: entry.idempotencyKey,
      },
    );
  }
  return entry;
}

export async function listTransactions(
  em: EntityManager,
  userId: string,
  page: Page<string>,
): Promise<{ items: LedgerEntry[]; hasMore: boolean }> {
  const rows = await em.find(LedgerEntry, page.after === undefined ? { userId } : { userId, id: { $lt: page.after } }, {
    orderBy: { id: "desc" },
    limit: page.size + 1,
    disableIdentityMap: true,
  });
  return { items: rows.slice(0, page.size), hasMore: rows.length > page.size };
}
