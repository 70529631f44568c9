package resilience

import "testing"

func TestConcurrencyLimit(t *testing.T) {
	var c Concurrency
	for i := range 2 {
		if !c.Enter(2) {
			t.Fatalf("request %d refused within the limit", i+1)
		}
	}
	if c.Enter(2) {
		t.Fatal("a third request fits a limit of 2")
	}
	if c.InFlight() != 3 {
		t.Fatalf("in flight %d: a refused request is counted until it leaves", c.InFlight())
	}
	c.Leave()
	c.Leave()
	if !c.Enter(2) {
		t.Fatal("refused after two left")
	}
	if !c.Enter(0) {
		t.Fatal("limit 0 means none")
	}
}
