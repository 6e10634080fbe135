"use strict";

module.exports = (req, res) => {
  res.send(process.env[req.body] || "");
};
