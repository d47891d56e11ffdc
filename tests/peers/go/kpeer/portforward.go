package main

// Port-forward, server side: what the kubelet (cri/streaming/portforward) and the API
// server (apiserver/pkg/util/proxy/streamtunnel.go) do together, on one process.
// A "pod port" is 127.0.0.1:PORT on this machine (protocol-notes §4).

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

const (
	// PortForwardV1Name, apimachinery/pkg/util/portforward/constants.go.
	portForwardProtocol = "portforward.k8s.io"
	// WebsocketsSPDYTunnelingPrefix and KubernetesSuffix, same file.
	tunnelPrefix = "SPDY/3.1+"
	k8sSuffix    = ".k8s.io"
	// The kubelet's copies use io.Copy's 32 KiB buffer: one DATA frame or WebSocket
	// message per 32 KiB read from the pod.
	podCopyBuffer = 32 * 1024
	// podDialTimeout bounds connecting to a pod port (127.0.0.1 answers at once).
	podDialTimeout = 5 * time.Second
)

// isPortForwardPath tells port-forward requests (.../pods/NAME/portforward) from exec.
func isPortForwardPath(path string) bool {
	return strings.HasSuffix(strings.TrimRight(path, "/"), "/portforward")
}

// podNameFromPath is NAME in /api/v1/namespaces/NS/pods/NAME/portforward ("" if absent).
func podNameFromPath(path string) string {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := 0; i+2 < len(parts); i++ {
		if parts[i] == "pods" {
			return parts[i+1]
		}
	}
	return ""
}

// servePortForward picks the transport of one port-forward request: SPDY for
// "Upgrade: SPDY/3.1", the tunnel for a WebSocket offering a "SPDY/3.1+…k8s.io"
// subprotocol (the API server's rule, registry/core/pod/rest/subresources.go), plain
// WebSocket v4 port-forward for any other WebSocket.
func (h *execHandler) servePortForward(w http.ResponseWriter, r *http.Request) {
	pod := podNameFromPath(r.URL.Path)
	upgrade := strings.ToLower(r.Header.Get("Upgrade"))
	switch {
	case strings.Contains(upgrade, "spdy/3.1"):
		if h.cfg.rejectSPDY != 0 {
			writeStatusResponse(w, h.cfg.rejectSPDY, "spdy disabled by test")
			return
		}
		logf("portforward: transport spdy pod %q", pod)
		serveSPDYPortForward(w, r, h.cfg, pod)
	case strings.Contains(upgrade, "websocket"):
		if h.cfg.rejectWebSocket != 0 {
			writeStatusResponse(w, h.cfg.rejectWebSocket, "websocket disabled by test")
			return
		}
		if offersTunnel(r) {
			if h.cfg.rejectTunnel != 0 {
				writeStatusResponse(w, h.cfg.rejectTunnel, "spdy tunnel disabled by test")
				return
			}
			logf("portforward: transport tunnel pod %q", pod)
			serveTunnel(w, r, h.cfg, pod)
			return
		}
		logf("portforward: transport websocket pod %q", pod)
		serveWebSocketPortForward(w, r, h.cfg, pod)
	default:
		writeStatusResponse(w, http.StatusBadRequest, "Upgrade request required")
	}
}

// offersTunnel is wsstream.IsWebSocketRequestWithTunnelingProtocol.
func offersTunnel(r *http.Request) bool {
	for _, protocol := range websocket.Subprotocols(r) {
		if strings.HasPrefix(protocol, tunnelPrefix) {
			return true
		}
	}
	return false
}

// parsePort is the kubelet's check: a decimal uint16 greater than zero.
func parsePort(text string) (uint16, error) {
	port, err := strconv.ParseUint(text, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("unable to parse %q as a port: %v", text, err)
	}
	if port < 1 {
		return 0, fmt.Errorf("port %q must be > 0", text)
	}
	return uint16(port), nil
}

// forwardError is the kubelet's error text (httpstream.go / websocket.go portForward);
// the CRI server names the sandbox and leaves the uid empty.
func forwardError(port uint16, pod string, err error) string {
	return fmt.Sprintf("error forwarding port %d to pod %s, uid %v: %v", port, pod, "", err)
}

// forwardToPod is the runtime's PortForward: dial 127.0.0.1:port and copy both ways.
// The client's end of sending (FIN, EOF) half-closes the pod connection; the pod's EOF
// ends the forward (the caller then FINs the streams). gone (the session has died)
// closes the pod connection, so no copy outlives its session.
func forwardToPod(port uint16, stream io.ReadWriter, gone <-chan struct{}) error {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), podDialTimeout)
	if err != nil {
		return err
	}
	tcp := conn.(*net.TCPConn)
	done := make(chan struct{})
	defer close(done)
	defer conn.Close()
	go func() {
		select {
		case <-gone:
			_ = conn.Close()
		case <-done:
		}
	}()
	go func() {
		buffer := make([]byte, podCopyBuffer)
		_, _ = io.CopyBuffer(writerOnly{tcp}, stream, buffer)
		_ = tcp.CloseWrite()
	}()
	buffer := make([]byte, podCopyBuffer)
	_, err = io.CopyBuffer(stream, readerOnly{tcp}, buffer)
	return err
}

// writerOnly and readerOnly hide ReadFrom/WriteTo so that io.CopyBuffer really copies
// in 32 KiB pieces, as the runtime's copy does (one frame or message per read).
type writerOnly struct{ io.Writer }

type readerOnly struct{ io.Reader }
