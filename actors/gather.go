package actors

// gather answers a request once every part it fanned out (proposals to the
// controller, calls to group actors) has come back. It counts the handler
// itself as one part, so an answer can't go out while the handler is
// still fanning out; the handler's own done() comes last. Used only on the
// connection's actor, so it needs no lock.
type gather struct {
	pending int
	finish  func()
}

func newGather(finish func()) *gather { return &gather{pending: 1, finish: finish} }

// add counts one more part still to come back.
func (g *gather) add() { g.pending++ }

// done counts one part back, and finishes when it was the last.
func (g *gather) done() {
	if g.pending--; g.pending == 0 {
		g.finish()
	}
}
