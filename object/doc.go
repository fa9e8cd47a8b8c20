// Package object owns mesh's content-addressed object model and its on-disk
// store: object IDs (BLAKE3-256), the canonical versioned encoding of chunk,
// file, tree and commit objects, content-defined chunking, append-only packs
// with their indexes, refs with compare-and-swap and a reflog, fsck and gc.
//
// # Objects
//
// An object is a type and a body; its ID is BLAKE3-256 of
// type (1 byte) ‖ length of the body (8 bytes, big-endian) ‖ body, shown
// as 64 hex digits and abbreviable to a unique prefix. Types:
//
//   - chunk (1): raw bytes of a file, cut by content-defined chunking
//     (Chunking: a versioned algorithm name and min/normal/max sizes, fixed
//     per mesh, since devices deduplicate only with identical boundaries).
//   - file (2): the ordered list of a file's chunks with their sizes.
//   - tree (3): a folder's entries sorted by name, each a name, a kind
//     (0 file, 1 executable, 2 symlink, 3 directory), the size and the ID
//     of a file (or of the symlink's target text as a file) or a tree.
//   - commit (4): a tree, its parents, the device that made it (its ID
//     and, when set, its name), the author, the time and time zone, the
//     message, and for merges the conflicts it recorded (path, copy path,
//     whose version the copy is, and the base, ours and theirs entry IDs).
//
// Encoding, all of it canonical (one value has exactly one encoding, so
// equal content has equal IDs on every device and every version of mesh;
// decoders reject any other): a body starts with FormatVersion (1 byte);
// counts and sizes are unsigned varints, times and zones signed varints,
// strings a uvarint length and the bytes, IDs their 32 bytes. A file is
// count, then (ID, size) per chunk; a tree is count, then (name, kind,
// size, ID) per entry, names sorted and unique, never "", ".", "..", with
// '/' or NUL, and never .mesh in any case (Reserved); a commit is tree,
// parent count and parents (no parent twice), device, author, time, zone,
// message, conflict count and conflicts, then, only when it is set or
// origins follow, the device name, and last, only when some conflict
// has one, each conflict's origin (the merge that made it, zero for this
// commit; the commit whose version it names; that commit's device name),
// so commits without them encode as they always have.
// Limits (MaxCommitSize, MaxTreeSize, MaxSize) bound what a store accepts
// from anyone. Chunks are stored zstd-compressed when that saves more
// than 1/32.
//
// # Store
//
// Objects live in append-only packs (objects/*.pack) with an index each
// (*.idx); both formats are described in pack.go. A Batch writes a pack to
// a temporary file, fsyncs it and its index, renames both into place and
// fsyncs the folder; a pack is never modified afterwards, and gc writes a
// new pack of what it keeps before it deletes old ones. Repack (repack.go)
// merges small packs so that their sizes stay a factor-2 progression,
// about log2 of the store's size in packs, copying and checking every
// object before a record of what it replaces is written and the old
// packs are deleted; one repack or gc at a time holds objects/repack.lock. Refs are files
// under refs/ holding an ID; HEAD is "ref: heads/<branch>" or an ID. Each
// ref move appends a line "old new unix-time message #crc32" to its
// reflog under logs/, so any earlier head is recoverable and a damaged
// line is found (fsck reports it, gc refuses to run on it).
//
// # Invariants
//
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
//   - Closure: refs are moved by compare-and-swap under a lock, only after
//     the objects they point at and everything those reach are durable,
//     and every move is logged. So "the store has commit X" means it has
//     X's trees, files, chunks and parents.
//   - gc deletes only what no ref, HEAD or reflog entry reaches, and only
//     in packs older than its grace period.
//
// object imports no other mesh package; every other package may import it.
package object
