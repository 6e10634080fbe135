"use strict";

module.exports = (req, res) => {
  throw new Error("boom js");
};
