// Package repo is a mesh repository on one device: the object store and
// refs under .mesh/, the configuration, the stat cache and the working tree
// around them, and the operations the CLI offers on them (status, commit,
// history, diff, restore, checkout, fsck, gc).
//
// It never prints; results are returned as values for cmd/mesh to render.
// Every operation that changes the working tree or moves refs holds the
// repository lock, writes objects before refs, and refuses to overwrite or
// delete anything that is not committed.
//
// Working-tree updates are crash-safe (intent.go): each records its intent
// in .mesh/op before it writes a file, writes through .mesh/tmp, and the
// next command that takes the lock (Repo.Lock) finishes one a killed
// process left. One process serves a repository at a time
// (Repo.LockServing, .mesh/serve.lock).
package repo
