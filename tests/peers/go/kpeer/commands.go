package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// copyChunkSize bounds every write a command makes: each write becomes one SPDY DATA
// frame or one WebSocket message, as with a runtime's 32 KiB copy buffers.
const copyChunkSize = 32 * 1024

// termSize is remotecommand.TerminalSize: no JSON tags, so the wire names are
// "Width"/"Height" (client-go tools/remotecommand/resize.go).
type termSize struct {
	Width  uint16
	Height uint16
}

// execEnv is what a built-in command sees: the streams the client asked for (nil when
// not requested), resize events (nil without a tty) and a channel closed when the client
// has gone away.
type execEnv struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	tty    bool
	resize <-chan termSize
	gone   <-chan struct{}
}

func (e *execEnv) in() io.Reader {
	if e.stdin == nil {
		return strings.NewReader("")
	}
	return e.stdin
}

func (e *execEnv) out() io.Writer {
	if e.stdout == nil {
		return io.Discard
	}
	return e.stdout
}

// errOut is the process's stderr: with a tty the runtime merges it into the terminal,
// that is into stdout (the kubelet drops the stderr stream when tty is set).
func (e *execEnv) errOut() io.Writer {
	if e.tty {
		return e.out()
	}
	if e.stderr == nil {
		return io.Discard
	}
	return e.stderr
}

// runCommand runs a built-in command. It returns nil on success, *exitError for a
// non-zero exit, or another error for a failure that is not an exit (InternalError).
func runCommand(argv []string, env *execEnv) error {
	if len(argv) == 0 {
		return notFound("")
	}
	args := argv[1:]
	switch argv[0] {
	case "cat":
		return copyChunks(env.out(), env.in())
	case "echo":
		_, err := io.WriteString(env.out(), strings.Join(args, " ")+"\n")
		return err
	case "stderr":
		_, err := io.WriteString(env.errOut(), strings.Join(args, " ")+"\n")
		return err
	case "exit":
		return exitCommand(argv)
	case "fail":
		return errors.New(strings.Join(args, " "))
	case "source":
		return sourceCommand(args, env.out())
	case "sink":
		return sinkCommand(env.in(), env.out())
	case "tee-stderr":
		return copyChunks(io.MultiWriter(env.out(), env.errOut()), env.in())
	case "size":
		return sizeCommand(env)
	case "sleep-forever":
		<-env.gone
		return errors.New("client went away")
	}
	return notFound(argv[0])
}

// notFound is the error text containerd/runc give for a missing binary.
func notFound(name string) error {
	return fmt.Errorf("failed to exec in container: failed to start exec \"kpeer\": "+
		"OCI runtime exec failed: exec failed: unable to start container process: "+
		"exec: %q: executable file not found in $PATH: unknown", name)
}

func exitCommand(argv []string) error {
	if len(argv) != 2 {
		return errors.New("exit: usage: exit N")
	}
	code, err := strconv.Atoi(argv[1])
	if err != nil {
		return fmt.Errorf("exit: invalid code %q", argv[1])
	}
	if code == 0 {
		return nil
	}
	return &exitError{argv: argv, code: code}
}

// copyChunks copies src to dst in writes of at most copyChunkSize bytes (deliberately
// not io.Copy, which could hand the whole transfer to a ReaderFrom/WriterTo).
func copyChunks(dst io.Writer, src io.Reader) error {
	buf := make([]byte, copyChunkSize)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// sourceCommand writes N bytes of the pattern bytes(i % 251 for i in range(N)).
func sourceCommand(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("source: usage: source N")
	}
	total, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil || total < 0 {
		return fmt.Errorf("source: invalid size %q", args[0])
	}
	// One period of slack lets every chunk start at any phase of the pattern.
	pattern := make([]byte, copyChunkSize+251)
	for i := range pattern {
		pattern[i] = byte(i % 251)
	}
	for offset := int64(0); offset < total; {
		n := int64(copyChunkSize)
		if total-offset < n {
			n = total - offset
		}
		phase := offset % 251
		if _, err := out.Write(pattern[phase : phase+n]); err != nil {
			return err
		}
		offset += n
	}
	return nil
}

func sinkCommand(in io.Reader, out io.Writer) error {
	digest := sha256.New()
	count, err := io.Copy(digest, in)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%d %s\n", count, hex.EncodeToString(digest.Sum(nil)))
	return err
}

// sizeCommand prints every resize event as "WxH\n" until stdin ends (or, without
// stdin, until the client goes away). Events and stdin travel on different streams
// with no ordering between them, so a client should wait for the echo of its last
// resize before closing stdin.
func sizeCommand(env *execEnv) error {
	stdinDone := make(chan struct{})
	if env.stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, env.stdin)
			close(stdinDone)
		}()
	}
	resize := env.resize
	for {
		select {
		case size, ok := <-resize:
			if !ok {
				resize = nil
				continue
			}
			if _, err := fmt.Fprintf(env.out(), "%dx%d\n", size.Width, size.Height); err != nil {
				return err
			}
		case <-stdinDone:
			return nil
		case <-env.gone:
			return nil
		}
	}
}
