//go:build !linux

// meshbench runs on Linux only: it compares mesh with git, rsync, restic
// and rclone, times children with rusage, and builds its emulated machines
// from network namespaces.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "meshbench runs on Linux only (network namespaces, rusage, the tools it compares with)")
	os.Exit(2)
}
