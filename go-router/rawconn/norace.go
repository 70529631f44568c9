//go:build !race

package rawconn

func raceReleaseMerge(uintptr) {}
func raceAcquire(uintptr)      {}
