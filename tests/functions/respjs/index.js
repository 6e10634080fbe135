// Answers the response contract's cases (README "Writing functions"),
// chosen by the request body.
module.exports = (req, res) => {
  switch (req.body) {
    case "status":
      return res.status(201).set("X-Custom", "yes").send("created");
    case "notfound":
      return res.status(404).send("no such thing");
    case "unavailable":
      return res.status(503).set("Retry-After", "7").send("come back later");
    case "json":
      return res.json({ a: 1 });
    case "type":
      return res.type("json").send('{"b":2}');
    case "cookies":
      return res.set("Set-Cookie", ["a=1", "b=2"]).send("two cookies");
    case "return":
      return "returned";
    case "returnobject":
      res.status(202);
      return { queued: true };
    case "promise":
      return new Promise((resolve) => setTimeout(() => resolve("promised"), 5));
    case "promisestatus":
      return Promise.resolve().then(() => {
        res.status(204);
      });
    case "throw":
      throw new Error("it broke");
    case "reject":
      return Promise.reject(new Error("it was rejected"));
    case "callback":
      setTimeout(() => res.send("called back"), 5);
      return undefined;
    case "hostile":
      return res
        .set({
          "Content-Length": "1",
          "Transfer-Encoding": "chunked",
          Connection: "close",
          Upgrade: "websocket",
          "X-Evil": "a\r\nInjected: yes",
        })
        .send("still framed");
    case "switch":
      return res.status(101).set("Upgrade", "websocket").send("up");
    case "bigheaders":
      return res.set("X-Big", "a".repeat(20000)).send("big");
    case "manyheaders":
      for (let i = 0; i < 100; i++) res.set("X-H" + i, "v");
      return res.send("many");
    default:
      return res.send("plain " + req.body);
  }
};
