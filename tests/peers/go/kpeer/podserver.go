package main

// The pod side of port-forward tests and benchmarks, and a load client:
//
//   - "kpeer pod-serve": an echo port and a bench port on 127.0.0.1. The bench port
//     reads a 9-byte request, 'D' or 'U' and a big-endian uint64 N: for 'D' it sends N
//     bytes and closes; for 'U' it reads N bytes, answers their count as a big-endian
//     uint64 and closes.
//   - "kpeer pf-load": timed transfers through any address (a forwarded local port, or
//     the bench port itself as the direct-TCP anchor), or C connections held open.

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// benchBuffer is the size of every read and write of the bench port and load client.
const benchBuffer = 256 * 1024

func podServeMain(args []string) error {
	fs := flag.NewFlagSet("pod-serve", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "address to listen on (two free ports)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	echo, err := net.Listen("tcp", *host+":0")
	if err != nil {
		return err
	}
	bench, err := net.Listen("tcp", *host+":0")
	if err != nil {
		return err
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		os.Exit(0)
	}()
	fmt.Printf("ECHO %s\nBENCH %s\n", echo.Addr().String(), bench.Addr().String())
	_ = os.Stdout.Sync()
	go acceptLoop(echo, serveEcho)
	acceptLoop(bench, serveBench)
	return nil
}

func acceptLoop(listener net.Listener, serve func(*net.TCPConn)) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			return
		}
		go serve(conn.(*net.TCPConn))
	}
}

// serveEcho sends back everything until the client's FIN, then closes.
func serveEcho(conn *net.TCPConn) {
	defer conn.Close()
	buffer := make([]byte, podCopyBuffer)
	_, _ = io.CopyBuffer(writerOnly{conn}, readerOnly{conn}, buffer)
	_ = conn.CloseWrite()
}

func serveBench(conn *net.TCPConn) {
	defer conn.Close()
	var request [9]byte
	if _, err := io.ReadFull(conn, request[:]); err != nil {
		return
	}
	size := int64(binary.BigEndian.Uint64(request[1:]))
	buffer := make([]byte, benchBuffer)
	switch request[0] {
	case 'D':
		for left := size; left > 0; {
			chunk := buffer
			if left < int64(len(chunk)) {
				chunk = chunk[:left]
			}
			n, err := conn.Write(chunk)
			if err != nil {
				return
			}
			left -= int64(n)
		}
		_ = conn.CloseWrite()
		// Wait for the client's FIN (or a bound) so that closing sends no RST.
		_ = conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, conn)
	case 'U':
		got, _ := io.CopyBuffer(io.Discard, io.LimitReader(readerOnly{conn}, size), buffer)
		var answer [8]byte
		binary.BigEndian.PutUint64(answer[:], uint64(got))
		_, _ = conn.Write(answer[:])
		_ = conn.CloseWrite()
		_ = conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		_, _ = io.Copy(io.Discard, conn)
	}
}

type loadResult struct {
	Seconds float64 `json:"seconds"`
	Bytes   int64   `json:"bytes"`
	Conns   int     `json:"conns"`
}

func pfLoadMain(args []string) error {
	fs := flag.NewFlagSet("pf-load", flag.ContinueOnError)
	addr := fs.String("addr", "", "host:port to connect to")
	mode := fs.String("mode", "down", "down, up (bench port) or hold (echo port)")
	size := fs.Int64("bytes", 1<<20, "bytes per connection (down/up)")
	conns := fs.Int("conns", 1, "concurrent connections")
	timeout := fs.Duration("timeout", 300*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	go func() {
		time.Sleep(*timeout)
		fmt.Fprintf(os.Stderr, "kpeer pf-load: timed out after %v\n", *timeout)
		os.Exit(3)
	}()
	if *mode == "hold" {
		return holdConnections(*addr, *conns)
	}
	started := time.Now()
	errs := make(chan error, *conns)
	var wg sync.WaitGroup
	for i := 0; i < *conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- transfer(*addr, *mode, *size)
		}()
	}
	wg.Wait()
	elapsed := time.Since(started)
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return json.NewEncoder(os.Stdout).Encode(loadResult{
		Seconds: elapsed.Seconds(), Bytes: *size * int64(*conns), Conns: *conns})
}

// transfer is one timed bench connection: connect, request, move size bytes, EOF.
func transfer(addr, mode string, size int64) error {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	tcp := conn.(*net.TCPConn)
	var request [9]byte
	binary.BigEndian.PutUint64(request[1:], uint64(size))
	buffer := make([]byte, benchBuffer)
	switch mode {
	case "down":
		request[0] = 'D'
		if _, err := conn.Write(request[:]); err != nil {
			return err
		}
		got, err := io.CopyBuffer(io.Discard, readerOnly{conn}, buffer)
		if err != nil {
			return err
		}
		if got != size {
			return fmt.Errorf("download: got %d bytes of %d", got, size)
		}
	case "up":
		request[0] = 'U'
		if _, err := conn.Write(request[:]); err != nil {
			return err
		}
		for left := size; left > 0; {
			chunk := buffer
			if left < int64(len(chunk)) {
				chunk = chunk[:left]
			}
			n, err := conn.Write(chunk)
			if err != nil {
				return err
			}
			left -= int64(n)
		}
		_ = tcp.CloseWrite()
		answer, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		if len(answer) != 8 || int64(binary.BigEndian.Uint64(answer)) != size {
			return fmt.Errorf("upload: the pod answered %x for %d bytes", answer, size)
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	return nil
}

// holdConnections opens conns echo connections, proves each works with a one-byte round
// trip, prints "OPEN <seconds>", waits for a line (or EOF) on stdin, closes them all
// (FIN, then the echo's EOF) and prints "CLOSED".
func holdConnections(addr string, conns int) error {
	started := time.Now()
	open := make([]*net.TCPConn, 0, conns)
	for i := 0; i < conns; i++ {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		open = append(open, conn.(*net.TCPConn))
	}
	for _, conn := range open {
		if _, err := conn.Write([]byte{'x'}); err != nil {
			return err
		}
	}
	for i, conn := range open {
		var echoed [1]byte
		if _, err := io.ReadFull(conn, echoed[:]); err != nil {
			return fmt.Errorf("connection %d: no echo: %v", i, err)
		}
	}
	fmt.Printf("OPEN %.3f\n", time.Since(started).Seconds())
	_ = os.Stdout.Sync()
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	var failure error
	for _, conn := range open {
		_ = conn.CloseWrite()
	}
	for _, conn := range open {
		_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err != nil && failure == nil {
			failure = err
		}
		_ = conn.Close()
	}
	fmt.Println("CLOSED")
	return failure
}
