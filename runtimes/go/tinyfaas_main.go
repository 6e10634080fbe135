// tinyFaaS's handler for go functions. At deploy time this file is compiled
// together with the function's own package main, which defines
//
//	func fn(data string, headers map[string]string) (string, error)
//
// (upstream tinyFaaS's contract), into one static binary that serves the
// function on the handler socket: HTTP/1.1 (GET /health, POST /fn) for
// anything that speaks the documented handler protocol, and the daemon's
// length-prefixed framing (src/proxy/handler_frame.hpp) on connections that
// open with "\x00TF2". Every identifier here starts with "tinyfaas" so that
// it cannot collide with the function's own names. It must build with the
// oldest Go the README names (Debian 12's 1.19).
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"sync"
	"syscall"
)

const tinyfaasPreface = "\x00TF2"

// A frame larger than this is not from the daemon (its own limit is far
// lower): the connection is dropped instead of allocating it.
const tinyfaasMaxFrameBytes = 1 << 30

func main() {
	listener, cleanup, err := tinyfaasListen()
	if err != nil {
		fmt.Fprintln(os.Stderr, "tinyfaas go handler:", err)
		os.Exit(1)
	}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cleanup()
		os.Exit(0)
	}()

	httpConns := &tinyfaasConnQueue{conns: make(chan net.Conn), closed: make(chan struct{}), addr: listener.Addr()}
	server := &http.Server{Handler: http.HandlerFunc(tinyfaasServeHTTP)}
	go func() { _ = server.Serve(httpConns) }()
	for {
		conn, err := listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			fmt.Fprintln(os.Stderr, "tinyfaas go handler: accept:", err)
			continue
		}
		go tinyfaasSniff(conn, httpConns)
	}
}

// The daemon hands over a listening socket (TINYFAAS_LISTEN_FD); handlers
// started any other way bind TINYFAAS_SOCKET, or the path given as the
// last argument.
func tinyfaasListen() (net.Listener, func(), error) {
	if fd := os.Getenv("TINYFAAS_LISTEN_FD"); fd != "" {
		n, err := strconv.Atoi(fd)
		if err != nil {
			return nil, nil, fmt.Errorf("TINYFAAS_LISTEN_FD=%q is not a file descriptor", fd)
		}
		listener, err := net.FileListener(os.NewFile(uintptr(n), "handler socket"))
		if err != nil {
			return nil, nil, fmt.Errorf("TINYFAAS_LISTEN_FD=%d: %w", n, err)
		}
		return listener, func() {}, nil
	}
	path := os.Getenv("TINYFAAS_SOCKET")
	if path == "" && len(os.Args) > 1 {
		path = os.Args[len(os.Args)-1]
	}
	if path == "" {
		return nil, nil, errors.New("no socket: set TINYFAAS_LISTEN_FD or TINYFAAS_SOCKET")
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	listener, err := net.Listen("unix", path)
	if err != nil {
		return nil, nil, err
	}
	return listener, func() { _ = os.Remove(path) }, nil
}

// tinyfaasSniff tells the two protocols apart by the connection's first byte:
// no HTTP request starts with a zero byte.
func tinyfaasSniff(conn net.Conn, httpConns *tinyfaasConnQueue) {
	reader := bufio.NewReader(conn)
	first, err := reader.Peek(1)
	if err != nil {
		conn.Close()
		return
	}
	if first[0] != 0 {
		httpConns.push(&tinyfaasPeekedConn{Conn: conn, reader: reader})
		return
	}
	defer conn.Close()
	preface := make([]byte, len(tinyfaasPreface))
	if _, err := io.ReadFull(reader, preface); err != nil || string(preface) != tinyfaasPreface {
		return
	}
	tinyfaasServeFrames(reader, conn)
}

// One call at a time per connection: the proxy waits for each answer and
// opens more connections for concurrent calls.
func tinyfaasServeFrames(reader *bufio.Reader, conn net.Conn) {
	writer := bufio.NewWriter(conn)
	var head [8]byte
	for {
		if _, err := io.ReadFull(reader, head[:]); err != nil {
			return
		}
		headerBytes := binary.BigEndian.Uint32(head[0:4])
		bodyBytes := binary.BigEndian.Uint32(head[4:8])
		if uint64(headerBytes)+uint64(bodyBytes) > tinyfaasMaxFrameBytes {
			return
		}
		block := make([]byte, headerBytes)
		if _, err := io.ReadFull(reader, block); err != nil {
			return
		}
		body := make([]byte, bodyBytes)
		if _, err := io.ReadFull(reader, body); err != nil {
			return
		}
		headers, ok := tinyfaasFrameHeaders(block, len(body))
		if !ok {
			return
		}
		answer := tinyfaasCall(string(body), headers)
		answerBlock := tinyfaasEncodeHeaders(answer.header)
		var answerHead [12]byte
		binary.BigEndian.PutUint32(answerHead[0:4], uint32(answer.status))
		binary.BigEndian.PutUint32(answerHead[4:8], uint32(len(answerBlock)))
		binary.BigEndian.PutUint32(answerHead[8:12], uint32(len(answer.body)))
		writer.Write(answerHead[:])
		writer.Write(answerBlock)
		writer.WriteString(answer.body)
		if err := writer.Flush(); err != nil {
			return
		}
	}
}

// tinyfaasFrameHeaders gives a framed call the headers the same call over
// HTTP would have: Go's canonical names, each header's first value,
// Content-Length set and no Host (net/http moves Host out of the header map).
func tinyfaasFrameHeaders(block []byte, bodyBytes int) (map[string]string, bool) {
	headers := make(map[string]string)
	for at := 0; at < len(block); {
		if at+2 > len(block) {
			return nil, false
		}
		nameBytes := int(binary.BigEndian.Uint16(block[at:]))
		at += 2
		if at+nameBytes+4 > len(block) {
			return nil, false
		}
		name := textproto.CanonicalMIMEHeaderKey(string(block[at : at+nameBytes]))
		at += nameBytes
		valueBytes := int(binary.BigEndian.Uint32(block[at:]))
		at += 4
		if valueBytes > len(block)-at {
			return nil, false
		}
		value := string(block[at : at+valueBytes])
		at += valueBytes
		if name == "Host" || name == "Content-Length" {
			continue
		}
		if _, seen := headers[name]; !seen {
			headers[name] = value
		}
	}
	headers["Content-Length"] = strconv.Itoa(bodyBytes)
	return headers, true
}

func tinyfaasServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/health":
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "OK")
	case r.Method == http.MethodPost:
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		headers := make(map[string]string, len(r.Header))
		for name, values := range r.Header {
			if len(values) > 0 {
				headers[name] = values[0]
			}
		}
		answer := tinyfaasCall(string(body), headers)
		for name, value := range answer.header {
			w.Header().Set(name, value)
		}
		w.WriteHeader(answer.status)
		io.WriteString(w, answer.body)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// tinyfaasAnswer is what one call answers.
type tinyfaasAnswer struct {
	status int
	header map[string]string
	body   string
}

// tinyfaasCall runs the function once. Its result answers 200 (text/plain).
// An error answers 500 with its text, unless it has a StatusCode() int
// method (200-599): then that status, and the headers of its Header()
// map[string]string method if it has one. A function needs nothing of
// ours for that, only its own error type. A panic answers 500, and the
// handler keeps serving other calls.
func tinyfaasCall(data string, headers map[string]string) (answer tinyfaasAnswer) {
	defer func() {
		if recovered := recover(); recovered != nil {
			fmt.Fprintf(os.Stderr, "panic: %v\n%s", recovered, debug.Stack())
			answer = tinyfaasText(http.StatusInternalServerError, fmt.Sprintf("panic: %v", recovered))
		}
	}()
	result, err := fn(data, headers)
	if err == nil {
		return tinyfaasText(http.StatusOK, result)
	}
	answer = tinyfaasText(http.StatusInternalServerError, err.Error())
	if coded, ok := err.(interface{ StatusCode() int }); ok {
		if status := coded.StatusCode(); status >= 200 && status <= 599 {
			answer.status = status
		}
	}
	if headed, ok := err.(interface{ Header() map[string]string }); ok {
		for name, value := range headed.Header() {
			answer.header[textproto.CanonicalMIMEHeaderKey(name)] = value
		}
	}
	return answer
}

func tinyfaasText(status int, body string) tinyfaasAnswer {
	return tinyfaasAnswer{status: status, header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, body: body}
}

// tinyfaasEncodeHeaders is a response's header block: per header u16 name
// bytes, name, u32 value bytes, value. The daemon screens what is in it.
func tinyfaasEncodeHeaders(header map[string]string) []byte {
	var block []byte
	for name, value := range header {
		if len(name) > 0xFFFF {
			continue
		}
		block = binary.BigEndian.AppendUint16(block, uint16(len(name)))
		block = append(block, name...)
		block = binary.BigEndian.AppendUint32(block, uint32(len(value)))
		block = append(block, value...)
	}
	return block
}

// tinyfaasConnQueue is the listener net/http serves: the connections the
// sniffer found to speak HTTP.
type tinyfaasConnQueue struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	addr      net.Addr
}

func (q *tinyfaasConnQueue) push(conn net.Conn) {
	select {
	case q.conns <- conn:
	case <-q.closed:
		conn.Close()
	}
}

func (q *tinyfaasConnQueue) Accept() (net.Conn, error) {
	select {
	case conn := <-q.conns:
		return conn, nil
	case <-q.closed:
		return nil, net.ErrClosed
	}
}

func (q *tinyfaasConnQueue) Close() error {
	q.closeOnce.Do(func() { close(q.closed) })
	return nil
}

func (q *tinyfaasConnQueue) Addr() net.Addr { return q.addr }

// tinyfaasPeekedConn gives net/http the bytes the sniffer already read.
type tinyfaasPeekedConn struct {
	net.Conn
	reader *bufio.Reader
}

func (c *tinyfaasPeekedConn) Read(p []byte) (int, error) { return c.reader.Read(p) }
