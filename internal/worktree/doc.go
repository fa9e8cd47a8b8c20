// Package worktree maps a folder to trees and back: it scans the folder
// (honouring .meshignore, never descending into ignored directories) into
// file and tree objects, using a stat cache so unchanged files are not read
// again, and it writes trees out to disk.
//
// A scan makes each folder into its tree as soon as nothing below it is
// left to read, and lets its entries go, so a clean status of 200,000
// files holds a few folders in memory, not the whole tree; trees the
// store already holds are not kept in the snapshot (ScanOptions.Stored).
//
// Invariants: every path from a tree is validated before it touches the disk
// (no "..", no absolute path, no .mesh component, no write through a
// symlink); files are written to a temporary name and renamed; nothing that
// differs from what the caller says is on disk is overwritten or deleted.
package worktree
