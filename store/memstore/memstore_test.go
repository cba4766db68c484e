package memstore_test

import (
	"context"
	"testing"

	"gearmand/store"
	"gearmand/store/memstore"
	"gearmand/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return memstore.New() }, storetest.Volatile())
}

func BenchmarkStore(b *testing.B) {
	storetest.Bench(b, func(*testing.B) store.Store { return memstore.New() })
}

func TestRegistered(t *testing.T) {
	s, err := store.Open(context.Background(), "Memory", store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, ok := s.(*memstore.Store); !ok {
		t.Fatalf("store.Open(\"memory\") gave %T", s)
	}
}
