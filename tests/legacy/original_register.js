// What the Node.js login Lambda this project replaces stores when a user registers, for the
// import tests: its register handler's item, hashed by bcryptjs 2.x exactly as it did.
//   username: lower-cased and trimmed (the key); name and email: as typed;
//   password: bcrypt (cost 10, $2a$) of the password with surrounding white space trimmed.
// Reads a JSON array of {username, name, email, password} on stdin, prints the items as a
// JSON array. NODE_TOOLS names the folder with node_modules/bcryptjs.
"use strict";
const path = require("node:path");
const tools = process.env.NODE_TOOLS || path.join(__dirname, "../../.tools/node");
const bcrypt = require(path.join(tools, "node_modules/bcryptjs"));

let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const rows = JSON.parse(input);
  const items = rows.map((row) => {
    const item = { username: String(row.username).toLowerCase().trim() };
    if (row.name !== undefined) item.name = row.name;
    if (row.email !== undefined) item.email = row.email;
    if (row.password !== undefined) item.password = bcrypt.hashSync(String(row.password).trim(), 10);
    return item;
  });
  process.stdout.write(JSON.stringify(items));
});
