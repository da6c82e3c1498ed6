package main

import (
	"net/http"
	"net/http/pprof"
)

// registerPprof serves Go's runtime profiles under /debug/pprof/ (serve
// --pprof, on the metrics listener only): CPU (/debug/pprof/profile?seconds=N),
// heap, goroutines, allocations, blocking, mutexes and the execution trace,
// for `go tool pprof http://ADDR/debug/pprof/heap`. Like the metrics, they
// have no authentication: the listener belongs on loopback or an internal
// network.
func registerPprof(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index) // heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
