// The wallet's writes as parts of larger statements: a balance change and its ledger entry go to
// PostgreSQL in one round trip. The change stays optimistic: MikroORM's query builder writes
// UPDATE … SET version = next WHERE user_id = ? AND version = ? from the entity's declared version
// property, and when it changes no row another writer got there first, so the caller throws
// OptimisticLockError and the whole transaction is rerun (withOptimisticRetry), as a flush would.

import { OptimisticLockError, sql } from "@mikro-orm/core";
import type { EntityManager } from "@mikro-orm/postgresql";
import type { CallBound } from "../platform/db/call-bound.js";
import type { GroupCommit } from "../platform/db/group-commit.js";
import { compileQuery, dataModifying, insertBuilder } from "../platform/db/compiled-query.js";
import { withOptimisticRetry } from "../platform/db/optimistic-retry.js";
import type { ORM } from "../platform/db/orm.js";
import { CURRENCY } from "../platform/money.js";
import {
  findEntry,
  fingerprint,
  LEDGER_FIELDS,
  ledgerEntryInsert,
  readWallet,
  replay,
  walletAfter,
  type LedgerEntryInput,
  type LedgerEntryView,
  type WalletView,
} from "./wallet-ledger.js";
import { Wallet } from "./wallet.entity.js";

/** The values of a versioned wallet write: the version read, and the balance and time after it. */
export interface WalletWrite {
  userId: string;
  version: number;
  nextVersion: number;
  balanceMinor: bigint;
  updatedAt: Date;
}

/** The versioned UPDATE (… RETURNING version), for a data-modifying WITH query. */
export const walletVersionedUpdate = (em: EntityManager, p: WalletWrite) =>
  em
    .createQueryBuilder(Wallet)
    .update({ balanceMinor: p.balanceMinor, updatedAt: p.updatedAt, version: p.nextVersion })
    .where({ userId: p.userId, version: p.version })
    .returning(["version"]);

type Credit = LedgerEntryInput & { version: number; nextVersion: number };

/**
 * A top-up of an existing wallet in one statement: the ledger entry and the versioned UPDATE.
 * Returns the entry's id and whether the UPDATE changed the row.
 */
const creditWallet = compileQuery<Credit>([...LEDGER_FIELDS, "version", "nextVersion"], (em, p) =>
  em
    .createQueryBuilder(Wallet, "w")
    .with("entry", dataModifying(ledgerEntryInsert(em, p)))
    .with(
      "credited",
      dataModifying(
        walletVersionedUpdate(em, {
          userId: p.userId,
          version: p.version,
          nextVersion: p.nextVersion,
          balanceMinor: p.balanceAfterMinor,
          updatedAt: p.createdAt,
        }),
      ),
    )
    // A raw fragment's values are inlined, not bound: these take none.
    .select([sql`(select id from entry)`.as("entryId"), sql`exists (select 1 from credited)`.as("credited")])
    .where({ userId: p.userId }),
);

type Opening = LedgerEntryInput & { currencyCode: string };

/**
 * A user's first top-up in one statement: the wallet's INSERT (a racing first top-up makes it
 * fail on the primary key, and the rerun finds the wallet) and the ledger entry. Returns the
 * entry's id.
 */
const openWallet = compileQuery<Opening>([...LEDGER_FIELDS, "currencyCode"], (em, p) =>
  ledgerEntryInsert(em, p).with(
    "created",
    dataModifying(
      // Version 1, as a flush of a new versioned entity writes it.
      insertBuilder<{
        userId: string;
        balanceMinor: bigint;
        currencyCode: string;
        createdAt: Date;
        updatedAt: Date;
      }>(Wallet, ["userId", "balanceMinor", "currencyCode", "createdAt", "updatedAt"], { version: 1 })(em, {
        userId: p.userId,
        balanceMinor: p.balanceAfterMinor,
        currencyCode: p.currencyCode,
        createdAt: p.createdAt,
        updatedAt: p.createdAt,
      }),
    ),
  ),
);

/** Writes the entry and credits the wallet read at `version` (null: none yet); the entry's id, or undefined on a version conflict. */
async function creditWithEntry(
  em: EntityManager,
  entry: LedgerEntryInput,
  version: number | null,
): Promise<string | undefined> {
  if (version === null) {
    const created = await openWallet.get<{ id: string | number }>(em, { ...entry, currencyCode: CURRENCY });
    if (!created) throw new Error("the ledger INSERT returned no id");
    return String(created.id);
  }
  const row = await creditWallet.get<{ entryId: string | number; credited: boolean }>(em, {
    ...entry,
    version,
    nextVersion: version + 1,
  });
  return row?.credited ? String(row.entryId) : undefined;
}

export interface TopUpResult {
  wallet: WalletView;
  entry: LedgerEntryView;
}

/** One attempt of a top-up inside `em`'s transaction; `lookUp`: first look for an earlier call with the key. */
async function topUpInTransaction(
  em: EntityManager,
  userId: string,
  amountMinor: bigint,
  idempotencyKey: string,
  lookUp: boolean,
): Promise<TopUpResult> {
  const requestFingerprint = fingerprint("TOP_UP", userId, amountMinor);
  if (lookUp) {
    const previous = await findEntry(em, userId, "TOP_UP", idempotencyKey);
    if (previous) {
      replay(previous, requestFingerprint);
      // The first result, not the wallet as it is now: later changes are GetBalance's to tell.
      return { wallet: await walletAfter(em, previous), entry: previous };
    }
  }
  const now = new Date();
  const before = await readWallet(em, userId);
  const entry: LedgerEntryInput = {
    userId,
    kind: "TOP_UP",
    amountMinor,
    balanceAfterMinor: (before?.balanceMinor ?? 0n) + amountMinor,
    idempotencyKey,
    requestFingerprint,
    reservationId: null,
    createdAt: now,
  };
  // The wallet row is locked only from this statement to COMMIT.
  const entryId = await creditWithEntry(em, entry, before?.version ?? null);
  if (entryId === undefined) throw OptimisticLockError.lockFailed(`Wallet ${userId}`);
  const version = before ? before.version + 1 : 1;
  return {
    wallet: { userId, balanceMinor: entry.balanceAfterMinor, version, updatedAt: now },
    entry: { ...entry, id: entryId },
  };
}

/**
 * Adds `amountMinor` to the user's wallet (creating it on first use) and records a TOP_UP ledger
 * entry. A replay of the same key returns the first result: its entry and the wallet as that
 * entry left it. Retries stop with the call `bound`: an answered call does not commit later.
 * Three round trips: BEGIN with the wallet's read, the entry with the versioned write, COMMIT.
 * With `group`, its first attempt shares a transaction with concurrent holds, top-ups and
 * payments (group-commit.ts), never with another call of the same user.
 */
export async function topUp(
  orm: ORM,
  userId: string,
  amountMinor: bigint,
  idempotencyKey: string,
  bound?: CallBound,
  group?: GroupCommit,
): Promise<TopUpResult> {
  // The first attempt does not look the key up: a key used before makes the ledger INSERT fail
  // on ledger_entry_idempotency_uq, and the retry (any retry) looks it up. The usual top-up, with
  // a fresh key, saves a statement.
  let attempts = 0;
  const alone = () =>
    withOptimisticRetry(
      orm,
      (em) => topUpInTransaction(em, userId, amountMinor, idempotencyKey, attempts++ > 0),
      bound,
    );
  if (!group) return alone();
  return group.run({
    keys: [`user:${userId}`],
    work: (em) => topUpInTransaction(em, userId, amountMinor, idempotencyKey, false),
    // After a batch that rolled back, the key may have been the reason: look it up.
    alone: () => {
      attempts = 1;
      return alone();
    },
    bound,
  });
}
