"use strict";

module.exports = (req, res) => {
  res.send(req.body);
};
