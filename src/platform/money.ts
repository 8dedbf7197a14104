// Money as the whole system counts it: integer minor units of one currency. Prices (booking),
// balances and payments (wallet) and events all use this one definition.

import type { MessageInitShape } from "@bufbuild/protobuf";
import type { MoneySchema } from "../../gen/concert/v1/common_pb.js";

/** The only currency: seats are priced in it and wallets hold it. */
export const CURRENCY = "JPY";

/** An amount as the API carries it (concert.v1.Money). */
export function money(amountMinor: bigint): MessageInitShape<typeof MoneySchema> {
  return { amountMinor, currencyCode: CURRENCY };
}
