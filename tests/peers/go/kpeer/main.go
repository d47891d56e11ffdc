// Command kpeer is an independent interop peer for kstream's tests.
//
// It reproduces, with the same Go libraries Kubernetes uses (moby/spdystream and
// gorilla/websocket), the byte-level behaviour of:
//
//   - the kubelet/CRI streaming server for exec over SPDY/3.1 and WebSocket
//     ("kpeer serve"), running a handful of built-in commands instead of processes;
//   - client-go's SPDY remotecommand executor ("kpeer spdy-client");
//   - port-forward as the kubelet and API server serve it on all three transports:
//     SPDY portforward.k8s.io, WebSocket v4 and the SPDY-in-WebSocket tunnel
//     ("kpeer serve", paths ending in /portforward; pod ports are 127.0.0.1:PORT);
//   - a pod to forward to and a load client ("kpeer pod-serve", "kpeer pf-load").
//
// Behaviour follows shared/protocol-notes.md §1-§5; comments cite the upstream file a
// behaviour comes from.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"
)

const usage = `usage:
  kpeer serve --listen 127.0.0.1:0 [--reject-websocket CODE] [--reject-spdy CODE]
              [--ping-interval DUR] [--stream-timeout DUR]
              [--reject-tunnel CODE] [--pair-timeout DUR] [--tunnel-cut BYTES]
  kpeer spdy-client --url URL [--protocol NAME]... [--stdin FILE] [--stdout FILE]
              [--stderr FILE] [--tty] [--resize WxH]... [--ping-interval DUR]
              [--header 'Name: value']... [--timeout DUR]
  kpeer pod-serve [--host 127.0.0.1]      (prints "ECHO addr" and "BENCH addr")
  kpeer pf-load --addr HOST:PORT --mode down|up|hold [--bytes N] [--conns C]
              [--timeout DUR]
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serveMain(os.Args[2:])
	case "spdy-client":
		err = spdyClientMain(os.Args[2:])
	case "pod-serve":
		err = podServeMain(os.Args[2:])
	case "pf-load":
		err = pfLoadMain(os.Args[2:])
	case "-h", "--help", "help":
		fmt.Print(usage)
		return
	default:
		err = fmt.Errorf("unknown subcommand %q\n%s", os.Args[1], usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "kpeer: %v\n", err)
		os.Exit(1)
	}
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// logf writes one diagnostic line to stderr (the Python fixtures keep it in a file).
func logf(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "kpeer %s: %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}
