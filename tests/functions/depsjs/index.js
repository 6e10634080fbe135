"use strict";

const isNumber = require("is-number");

module.exports = (req, res) => {
  res.send(String(isNumber(5)));
};
