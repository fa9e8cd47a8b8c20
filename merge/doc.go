// Package merge owns comparing and combining versions: line diffs, merge
// bases over the commit DAG, tree three-way merge and line-level text merge,
// and the conflict policy. It reads objects through package object and never
// touches refs or the working tree.
//
// Convergence: a merge is a pure function of its inputs. The merge commit
// of two heads has its parents in ID order, a time one second after the
// later parent, author "mesh", no device, and a fixed message; where both
// sides changed one thing differently, the side whose commit is later
// (ties: the larger ID) wins the path. So two devices that merge each
// other's heads, in either order, make the byte-identical commit, and
// history converges without merge ping-pong. Several heads are merged one
// at a time in ID order; criss-cross histories merge against the merge of
// their bases.
//
// Conflict policy: nothing either side wrote is lost, and a conflict
// never blocks. Text files merge line by line exactly as git merge-file
// merges them, on a line diff that aligns as git's xdiff does (xdiff.go);
// overlapping edits, binary clashes, add/add and file/directory clashes
// keep the winner at the path and the loser beside it as
// name.conflict-<device>-<shortid>.ext (device: the name its commit
// carries, else the first group of its ID), or with Markers both between
// git-style markers; a change against a deletion keeps the change. Each
// is recorded in the merge commit (object.Conflict) with the device and
// commit the kept version came from, found through merge commits down to
// a commit a device made. A merge commit lists every conflict open at it:
// the ones it made and the unresolved ones of both parents, where one
// side's history saw and resolved a conflict it stays resolved, and a
// copy several merges kept is one conflict (conflicts.go: Open). A version
// already kept beside the file is not kept again.
//
// Renames: a file one side moved (unchanged, or edited but at least half
// alike, scored as git's -M50% scores it: bytes in common by line or
// 64-byte block) and the other side edited ends with both edits at the
// new name (rename.go), so devices that merge in different orders reach
// the same tree. Directory renames are not inferred, and a file both sides
// moved to different names stays at both.
//
// It imports object only.
package merge
