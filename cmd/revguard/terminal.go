package main

import (
	"os"

	"golang.org/x/term"
)

// isTerminal reports whether f is a terminal: confirmations need someone
// to answer, and watch and bench draw for a person only on one.
func isTerminal(f *os.File) bool {
	return f != nil && term.IsTerminal(int(f.Fd()))
}

// clearScreen moves the cursor home and clears the screen (ANSI), before
// watch redraws.
const clearScreen = "\x1b[H\x1b[2J"
