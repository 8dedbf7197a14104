// Every Redis key of the waiting room. Keys of one concert share the hash tag {concertId}, so
// each concert's Lua scripts touch one cluster slot; a token's own key is tagged by the token,
// which lets the guard validate it with one GET without knowing the concert. The registry of
// concerts and the rebuild marker share the tag {registry}: on a Redis Cluster a node restarted
// empty then loses both or neither, and queue-mode.ts notices a lost marker (the ADMIT script a
// lost concert). No script or pipeline combines keys of two tags, and nothing scans the keyspace.

/** The seven keys every concert script receives, in this order (KEYS[1..7] in Lua). */
export interface ConcertKeys {
  /** INCR counter handing out FIFO sequence numbers. */
  seq: string;
  /** ZSET token → seq: the waiting line. */
  waiting: string;
  /** ZSET token → active expiry (epoch ms): admitted users. */
  active: string;
  /** ZSET token → last seen (epoch ms) of waiting users; polls and open streams refresh it. */
  seen: string;
  /** HASH userId → live token: makes JoinQueue idempotent. */
  users: string;
  /** HASH live token → userId: lets expiry clear `users`. */
  owners: string;
  /** HASH f (slots given back so far: leaves, expiries), for the wait estimate. */
  rate: string;
  /**
   * STRING set before the first admission after a sale-start prequeue's opening (prequeue.ts):
   * from then on JOIN takes no prequeue place. Only JOIN reads it, as its KEYS[8].
   */
  prequeueOpened: string;
}

export interface QueueKeys {
  concert(concertId: string): ConcertKeys;
  /** STRING "<state digit>|concertId|userId|activeExpireMs" (see token-record.ts). */
  token(token: string): string;
  /** ZSET concertId → time of the last join (epoch ms): concerts the admission loop ticks. */
  concerts: string;
  /** Epoch ms at which Redis was last filled from PostgreSQL; gone means Redis lost its data. */
  rebuiltAt: string;
}

export function createQueueKeys(prefix: string): QueueKeys {
  return {
    concert(concertId) {
      const base = `${prefix}q:{${concertId}}:`;
      return {
        seq: `${base}seq`,
        waiting: `${base}waiting`,
        active: `${base}active`,
        seen: `${base}seen`,
        users: `${base}users`,
        owners: `${base}owners`,
        rate: `${base}rate`,
        prequeueOpened: `${base}prequeue-opened`,
      };
    },
    token: (token) => `${prefix}qt:{${token}}`,
    concerts: `${prefix}q:{registry}:concerts`,
    rebuiltAt: `${prefix}q:{registry}:rebuilt-at`,
  };
}

export function concertKeyList(keys: ConcertKeys): string[] {
  return [keys.seq, keys.waiting, keys.active, keys.seen, keys.users, keys.owners, keys.rate];
}
