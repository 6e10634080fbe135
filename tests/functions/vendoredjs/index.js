"use strict";

// Needs its vendored module: an offline node has no registry to install from.
const shout = require("tinyvendored");

module.exports = (req, res) => {
  res.send(shout(req.body || ""));
};
