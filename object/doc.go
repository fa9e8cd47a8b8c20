// Package object owns mesh's content-addressed object model and its on-disk
// store: object IDs (BLAKE3-256), the canonical versioned encoding of chunk,
// file, tree and commit objects, content-defined chunking, append-only packs
// with their indexes, refs with compare-and-swap and a reflog, fsck and gc.
//
// Invariants:
//   - An object's ID is BLAKE3-256 of type ‖ length ‖ body, and its body has
//     exactly one encoding: decoders reject anything Encode would not produce.
//   - Every read re-hashes what it read; a mismatch is ErrCorrupt naming the
//     object and the pack.
//   - Packs are written to a temporary file, fsynced and renamed; a pack is
//     never modified afterwards. Has, Get and everything that decides what
//     the store holds see objects only through a complete pack index.
//     HasPending and GetPending also see the unfinished packs of readable
//     batches, for a server passing chunks on to other devices, never for
//     deciding what this store holds.
//   - Refs are moved by compare-and-swap under a lock, after the objects they
//     point at are durable (the closure invariant), and every move is logged.
//
// object imports no other mesh package.
package object
