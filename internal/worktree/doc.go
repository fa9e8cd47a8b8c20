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
// A folder that cannot hold some names of history (Windows's rules, a
// case-insensitive or normalizing filesystem) keeps them where PlanNames
// says, a pure function of each directory's names and the folder's
// FolderRules (probed once by ProbeFolder): escaped (EscapeName), or under
// a clash name. Apply puts each path where its tree's plan does and moves
// what a changed plan puts elsewhere; Scan maps the folder's names back by
// the plan of HEAD's tree, so a commit from such a folder changes nothing.
// Names makes the mapping; with no rules it is the identity and costs
// nothing.
//
// Invariants: every path from a tree is validated before it touches the disk
// (no "..", no absolute path, no .mesh component, no write through a
// symlink); files are written to a temporary name and renamed; nothing that
// differs from what the caller says is on disk is overwritten or deleted.
package worktree
