// Package remote moves objects between stores and authenticates devices:
// identity (Ed25519 key, self-signed certificate, device ID), the mesh
// secret and invite tokens, the TLS 1.3 transport and its wire format,
// the fetch negotiation (Fetch, over a Peer: another repository on disk
// or a Conn to a device), push, the Server behind mesh serve with its
// Tracker of who holds which commit, and the Swarm that spreads a fetch's
// chunks over every device holding or fetching the same commits.
//
// Invariants: every object that arrives is checked against its ID and the
// type its parent gives it before it is stored; metadata is stored only
// after everything under it (so "the store has X" means "has X's
// closure"); every frame is size-checked before anything is allocated for
// it; a device is told nothing before it proves it holds the mesh secret.
// The package never decides merges and never moves refs: a push's ref
// move is the caller's PushFunc.
//
// Wire: after the TLS handshake (certificates self-signed; trust comes
// from the membership proof), the client sends hello {version, mesh ID,
// device, MAC(secret, "client", TLS exporter, device)}; the server checks
// it and answers with its own proof, or an error and the end. Then
// requests, each answered in full, in order: refs; commits (wants,
// haves → the commits between, then end); get (IDs → one object or
// missing each); have (IDs → a bitmap of those held); holders (a commit,
// and optionally where the asker serves it → the devices the tracker
// knows hold or fetch it); push (the receiver then fetches from the
// pusher over the same connection and answers with the result); delta
// get, to a peer whose hello lists the "delta" feature (chunk IDs, each
// with the chunks of the file's old version it replaced → each chunk as
// stored, missing, or compressed against those bases: delta.go). Frames
// are kind (1 byte) ‖ length (4 bytes) ‖ payload, at most 4 MiB (64 MiB
// for an object).
//
// It imports object only.
package remote
