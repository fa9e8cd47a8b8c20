// Package gitio moves history between a mesh store and a git repository,
// through go-git: Import recreates git commits as mesh commits (same
// parents, author, time, message, files, executable bits and symlinks),
// Export writes mesh commits as git commits, deterministically and with a
// Mesh-Commit trailer. Both are incremental through a map file of the IDs
// already converted, and a git tree exported from an imported commit is
// byte-identical to the original (same git tree ID).
//
// It imports object and go-git; it never moves mesh refs (the repository
// does that once the objects are durable).
package gitio
