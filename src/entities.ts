// Every entity MikroORM maps, listed at the wiring level beside app.ts: each module owns its
// entities, and platform/db takes this list as a parameter rather than importing the modules.

import { AdminAction } from "./admin/admin-action.entity.js";
import { QueueSettingsRow } from "./admin/queue-settings.entity.js";
import { Concert } from "./booking/concert.entity.js";
import { Reservation } from "./booking/reservation.entity.js";
import { Schedule } from "./booking/schedule.entity.js";
import { Seat } from "./booking/seat.entity.js";
import { Outbox } from "./platform/db/outbox.entity.js";
import { QueueEntry } from "./queue/queue-entry.entity.js";
import { PrequeueSeed } from "./queue/prequeue-seed.entity.js";
import { QueueMissedRow } from "./queue/queue-store.entity.js";
import { LedgerEntry } from "./wallet/ledger-entry.entity.js";
import { Payment } from "./wallet/payment.entity.js";
import { Wallet } from "./wallet/wallet.entity.js";

export const ENTITIES = [
  Concert,
  Schedule,
  Seat,
  Reservation,
  Wallet,
  LedgerEntry,
  Payment,
  QueueEntry,
  QueueMissedRow,
  Outbox,
  AdminAction,
  QueueSettingsRow,
  PrequeueSeed,
];
