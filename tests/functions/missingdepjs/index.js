const leftpadx = require("leftpadx");

module.exports = (req, res) => {
  res.send(leftpadx(String(req.body), 8));
};
