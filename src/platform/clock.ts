// Domain code reads the time through a Clock instead of `new Date()`: a test about holds and
// their ends steps the clock past an end rather than sleeping past it on a machine of unknown speed.

export type Clock = () => Date;

export const systemClock: Clock = () => new Date();
