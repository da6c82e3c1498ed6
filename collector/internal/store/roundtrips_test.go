package store_test

import (
	"io"
	"net"
	"net/url"
	"sync/atomic"
	"testing"
)

// roundTrips counts the round trips of the clients of a TCP proxy to a
// PostgreSQL server (proxyPostgres): the times a client writes after the
// server answered it, however many segments either sends.
type roundTrips struct{ n atomic.Int64 }

// proxyPostgres starts a proxy to the server of dsn and returns the dsn
// through it, with the count of its clients' round trips.
func proxyPostgres(t *testing.T, dsn string) (string, *roundTrips) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	rt := &roundTrips{}
	server := u.Host
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			go rt.relay(client, server)
		}
	}()
	u.Host = ln.Addr().String()
	return u.String(), rt
}

// relay carries one client's connection to the server and back.
func (rt *roundTrips) relay(client net.Conn, server string) {
	defer client.Close()
	up, err := net.Dial("tcp", server)
	if err != nil {
		return
	}
	defer up.Close()
	var answered atomic.Bool
	answered.Store(true)
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				answered.Store(true)
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if answered.Swap(false) {
				rt.n.Add(1)
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err == io.EOF || err != nil {
			return
		}
	}
}
