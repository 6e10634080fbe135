package main

import "fmt"

// fn greets its input and lists the headers it was called with, in the
// format of upstream tinyFaaS's hello-go sample.
func fn(data string, headers map[string]string) (string, error) {
	return "Hello, " + data + " with headers: " + fmt.Sprint(headers), nil
}
