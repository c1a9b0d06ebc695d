package finding

import (
	"reflect"
	"testing"
)

func TestErrorsDropWarnings(t *testing.T) {
	ps := []Problem{
		{Field: "a", Message: "wrong"},
		{Field: "b", Message: "odd", Warning: true},
		{Field: "c", Message: "also wrong"},
	}
	want := []Problem{ps[0], ps[2]}
	if got := Errors(ps); !reflect.DeepEqual(got, want) {
		t.Fatalf("Errors = %v, want %v", got, want)
	}
	if got := ps[1].Error(); got != "b: warning: odd" {
		t.Errorf("warning text %q", got)
	}
	if got := ps[0].Error(); got != "a: wrong" {
		t.Errorf("error text %q", got)
	}
}
