package locate

// WaitingObjectErasures is how many erasures of an artefact type's objects
// wait to run together.
func (l *Locator) WaitingObjectErasures(artefact string) int { return l.objectRuns.Waiting(artefact) }
