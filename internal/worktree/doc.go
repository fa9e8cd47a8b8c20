// Package worktree maps a folder to trees and back: it scans the folder
// (honouring .meshignore, never descending into ignored directories) into
// file and tree objects, using a stat cache so unchanged files are not read
// again, and it writes trees out to disk.
//
// Invariants: every path from a tree is validated before it touches the disk
// (no "..", no absolute path, no .mesh component, no write through a
// symlink); files are written to a temporary name and renamed; nothing that
// differs from what the caller says is on disk is overwritten or deleted.
package worktree
