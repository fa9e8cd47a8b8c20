package main

import (
	"encoding/json"
	"testing"

	"github.com/mesh-sync/mesh/object"
)

func TestFillEmpty(t *testing.T) {
	type inner struct {
		List []string
		M    map[string]int
		Raw  []byte
	}
	type outer struct {
		A     []int
		In    inner
		P     *inner
		Many  []inner
		Skip  []int `json:",omitempty"`
		ID    object.ID
		Maybe object.ID `json:",omitzero"`
		hid   []int
	}
	v := outer{P: &inner{}, Many: []inner{{}}}
	b, err := json.Marshal(fillEmpty(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"A":[],"In":{"List":[],"M":{},"Raw":null},"P":{"List":[],"M":{},"Raw":null},"Many":[{"List":[],"M":{},"Raw":null}],"ID":"` + object.ZeroID.String() + `"}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
	if v.A != nil {
		t.Errorf("a value passed by value was changed")
	}
}
