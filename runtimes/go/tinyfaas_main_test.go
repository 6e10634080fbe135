package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// An error a function defines to choose its status and headers.
type teapot struct{}

func (teapot) Error() string             { return "short and stout" }
func (teapot) StatusCode() int           { return 418 }
func (teapot) Header() map[string]string { return map[string]string{"x-pot": "tea"} }

// The function these tests serve: upstream's hello-go answer, an error, a
// coded error or a panic.
func fn(data string, headers map[string]string) (string, error) {
	switch data {
	case "error":
		return "", errors.New("it went wrong")
	case "teapot":
		return "", teapot{}
	case "panic":
		panic("boom")
	}
	return "Hello, " + data + " with headers: " + fmt.Sprint(headers), nil
}

type header struct{ name, value string }

func frame(headers []header, body string) []byte {
	var block []byte
	for _, h := range headers {
		block = binary.BigEndian.AppendUint16(block, uint16(len(h.name)))
		block = append(block, h.name...)
		block = binary.BigEndian.AppendUint32(block, uint32(len(h.value)))
		block = append(block, h.value...)
	}
	out := binary.BigEndian.AppendUint32(nil, uint32(len(block)))
	out = binary.BigEndian.AppendUint32(out, uint32(len(body)))
	out = append(out, block...)
	return append(out, body...)
}

// call sends one framed request on conn and reads the answer.
func call(t *testing.T, conn net.Conn, reader *bufio.Reader, headers []header, body string) (uint32, string) {
	t.Helper()
	status, _, out := callWithHeaders(t, conn, reader, headers, body)
	return status, out
}

// callWithHeaders also decodes the answer's header block.
func callWithHeaders(t *testing.T, conn net.Conn, reader *bufio.Reader, headers []header, body string) (uint32, map[string]string, string) {
	t.Helper()
	if _, err := conn.Write(frame(headers, body)); err != nil {
		t.Fatal(err)
	}
	var head [12]byte
	if _, err := io.ReadFull(reader, head[:]); err != nil {
		t.Fatal(err)
	}
	block := make([]byte, binary.BigEndian.Uint32(head[4:]))
	out := make([]byte, binary.BigEndian.Uint32(head[8:]))
	if _, err := io.ReadFull(reader, block); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(reader, out); err != nil {
		t.Fatal(err)
	}
	answered := map[string]string{}
	for at := 0; at < len(block); {
		n := int(binary.BigEndian.Uint16(block[at:]))
		name := string(block[at+2 : at+2+n])
		at += 2 + n
		v := int(binary.BigEndian.Uint32(block[at:]))
		answered[name] = string(block[at+4 : at+4+v])
		at += 4 + v
	}
	return binary.BigEndian.Uint32(head[:4]), answered, string(out)
}

func framedConnection(t *testing.T) (net.Conn, *bufio.Reader) {
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	go tinyfaasSniff(server, &tinyfaasConnQueue{conns: make(chan net.Conn), closed: make(chan struct{})})
	if _, err := client.Write([]byte(tinyfaasPreface)); err != nil {
		t.Fatal(err)
	}
	return client, bufio.NewReader(client)
}

func TestFramedCallsGetCanonicalFirstHeadersAndContentLength(t *testing.T) {
	conn, reader := framedConnection(t)
	status, out := call(t, conn, reader, []header{{"lab", "1"}, {"user-agent", "x"}, {"Lab", "2"}, {"Host", "h"}}, "data")
	if status != 200 || out != "Hello, data with headers: map[Content-Length:4 Lab:1 User-Agent:x]" {
		t.Fatalf("got %d %q", status, out)
	}
	// The connection carries the next call too.
	status, out = call(t, conn, reader, nil, "")
	if status != 200 || out != "Hello,  with headers: map[Content-Length:0]" {
		t.Fatalf("got %d %q", status, out)
	}
}

func TestFramedErrorAndPanicAnswer500AndKeepServing(t *testing.T) {
	conn, reader := framedConnection(t)
	if status, out := call(t, conn, reader, nil, "error"); status != 500 || out != "it went wrong" {
		t.Fatalf("error: got %d %q", status, out)
	}
	if status, out := call(t, conn, reader, nil, "panic"); status != 500 || out != "panic: boom" {
		t.Fatalf("panic: got %d %q", status, out)
	}
	if status, _ := call(t, conn, reader, nil, "again"); status != 200 {
		t.Fatalf("after a panic: got %d", status)
	}
}

func TestFramedAnswerCarriesTextTypeAndACodedErrorsStatusAndHeaders(t *testing.T) {
	conn, reader := framedConnection(t)
	status, headers, _ := callWithHeaders(t, conn, reader, nil, "x")
	if status != 200 || headers["Content-Type"] != "text/plain; charset=utf-8" {
		t.Fatalf("ok: got %d %v", status, headers)
	}
	status, headers, out := callWithHeaders(t, conn, reader, nil, "teapot")
	if status != 418 || headers["X-Pot"] != "tea" || out != "short and stout" {
		t.Fatalf("teapot: got %d %v %q", status, headers, out)
	}
}

func TestMalformedHeaderBlockClosesTheConnection(t *testing.T) {
	conn, reader := framedConnection(t)
	bad := binary.BigEndian.AppendUint32(nil, 3)
	bad = binary.BigEndian.AppendUint32(bad, 0)
	bad = append(bad, 0, 9, 'x') // a name longer than the block
	if _, err := conn.Write(bad); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.ReadByte(); err != io.EOF {
		t.Fatalf("want the connection closed, got %v", err)
	}
}

func TestHTTP(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(tinyfaasServeHTTP))
	defer server.Close()
	get, err := http.Get(server.URL + "/health")
	if err != nil {
		t.Fatal(err)
	}
	health, _ := io.ReadAll(get.Body)
	if get.StatusCode != 200 || string(health) != "OK" {
		t.Fatalf("health: %d %q", get.StatusCode, health)
	}
	request, _ := http.NewRequest(http.MethodPost, server.URL+"/fn", strings.NewReader("error"))
	response, err := http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(response.Body)
	if response.StatusCode != 500 || string(out) != "it went wrong" {
		t.Fatalf("error: %d %q", response.StatusCode, out)
	}
	request, _ = http.NewRequest(http.MethodPost, server.URL+"/fn", strings.NewReader("teapot"))
	response, err = http.DefaultClient.Do(request)
	if err != nil {
		t.Fatal(err)
	}
	out, _ = io.ReadAll(response.Body)
	if response.StatusCode != 418 || response.Header.Get("X-Pot") != "tea" || string(out) != "short and stout" {
		t.Fatalf("teapot: %d %v %q", response.StatusCode, response.Header, out)
	}
}
