// Which cluster worker holds the load generator's connections. node:cluster hands each new
// connection to a worker round-robin, so with a few long-lived HTTP/2 connections one worker may
// hold all of them; a fault that kills a worker must kill one that serves someone.

import { readdir, readFile, readlink } from "node:fs/promises";

const ESTABLISHED = "01";

/** Inodes of the established TCP sockets whose local port is `port` (Linux /proc/net/tcp{,6}). */
async function establishedSocketInodes(port: number): Promise<Set<string>> {
  const inodes = new Set<string>();
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    const text = await readFile(table, "utf8").catch(() => "");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10) continue;
      const [localAddress, state, inode] = [fields[1]!, fields[3], fields[9]!];
      if (state === ESTABLISHED && localAddress.endsWith(`:${hexPort}`)) inodes.add(inode);
    }
  }
  return inodes;
}

/** How many of `port`'s established connections the process `pid` holds. */
async function connectionsOf(pid: number, inodes: Set<string>): Promise<number> {
  const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
  let count = 0;
  for (const fd of fds) {
    const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => "");
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
    if (inode && inodes.has(inode)) count++;
  }
  return count;
}

/** The pids with the established connections on `port` each holds, busiest first. */
export async function byConnections(
  pids: readonly number[],
  port: number,
): Promise<{ pid: number; connections: number }[]> {
  const inodes = await establishedSocketInodes(port);
  const counted = await Promise.all(pids.map(async (pid) => ({ pid, connections: await connectionsOf(pid, inodes) })));
  return counted.sort((a, b) => b.connections - a.connections);
}
